//! The XML writer of the regulator reports (goAML and CAMLMAC): elements by name, text
//! stripped of characters XML 1.0 cannot carry, cut to a length and escaped.

use std::borrow::Cow;
use std::io::Write;

use quick_xml::Writer;
use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::ExportError;

/// Whether XML 1.0 can carry `c` (its `Char` production).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `s` with characters XML 1.0 cannot carry replaced by U+FFFD, cut to `max` characters
/// (ending in `…` when cut).
pub(crate) fn clean(s: &str, max: usize) -> Cow<'_, str> {
    let mut n = 0;
    let mut ok = true;
    for c in s.chars() {
        n += 1;
        ok &= is_xml_char(c);
    }
    if n <= max && ok {
        return Cow::Borrowed(s);
    }
    let keep = if n <= max { n } else { max.saturating_sub(1) };
    let mut out: String = s
        .chars()
        .take(keep)
        .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
        .collect();
    if n > max {
        out.push('…');
    }
    Cow::Owned(out)
}

/// A thin quick-xml writer: elements by name, text escaped and cleaned.
pub(crate) struct Xml<W: Write> {
    w: Writer<W>,
}

fn xml_err(e: std::io::Error) -> ExportError {
    ExportError::Xml(e.to_string())
}

impl<W: Write> Xml<W> {
    pub(crate) fn new(out: W, indent: bool) -> Self {
        let w = if indent {
            Writer::new_with_indent(out, b' ', 2)
        } else {
            Writer::new(out)
        };
        Xml { w }
    }

    pub(crate) fn decl(&mut self) -> Result<(), ExportError> {
        self.w
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
            .map_err(xml_err)
    }

    pub(crate) fn open(&mut self, tag: &str) -> Result<(), ExportError> {
        self.w
            .write_event(Event::Start(BytesStart::new(tag)))
            .map_err(xml_err)
    }

    pub(crate) fn close(&mut self, tag: &str) -> Result<(), ExportError> {
        self.w
            .write_event(Event::End(BytesEnd::new(tag)))
            .map_err(xml_err)
    }

    /// `<tag>text</tag>`, the text cleaned and cut to `max` characters, then escaped
    /// (`<`, `>`, `&`; quotes need no escaping in text).
    pub(crate) fn text(&mut self, tag: &str, text: &str, max: usize) -> Result<(), ExportError> {
        let t = clean(text, max);
        self.w
            .create_element(tag)
            .write_text_content(BytesText::from_escaped(partial_escape(t)))
            .map(|_| ())
            .map_err(xml_err)
    }

    /// Raw bytes between elements (a newline, or elements rendered elsewhere).
    pub(crate) fn raw(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        self.w.get_mut().write_all(bytes).map_err(xml_err)
    }

    pub(crate) fn finish(mut self) -> Result<W, ExportError> {
        self.w.get_mut().write_all(b"\n").map_err(xml_err)?;
        Ok(self.w.into_inner())
    }

    /// The output as written, without the final newline [`Xml::finish`] adds.
    pub(crate) fn finish_raw(self) -> W {
        self.w.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_replaces_what_xml_cannot_carry_and_cuts() {
        // Short ones are not touched.
        assert_eq!(clean("abc", 3), "abc");
        assert_eq!(clean("abcd", 3), "ab…");
        assert_eq!(clean("a\u{0}b", 10), "a\u{FFFD}b");
    }
}
