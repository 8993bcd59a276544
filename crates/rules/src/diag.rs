//! Rule diagnostics: an error at `file:line:column` with the source line, a caret and,
//! where it applies, the valid values. Rendered by hand: the one layout rule authors see
//! in a terminal and in CI logs, which needs no terminal-graphics dependency.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: Option<String>,
    /// The source line the error points into.
    pub snippet: Option<String>,
    /// A warning: the rule compiles and runs, but something in it is likely wrong.
    pub warning: bool,
}

impl Diagnostic {
    pub fn new(path: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
            help: None,
            snippet: None,
            warning: false,
        }
    }

    pub fn as_warning(mut self) -> Self {
        self.warning = true;
        self
    }

    pub fn with_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    pub fn with_snippet(mut self, source: &str) -> Self {
        self.snippet = source
            .lines()
            .nth(self.line.saturating_sub(1))
            .map(str::to_string);
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = if self.warning { "warning" } else { "error" };
        writeln!(f, "{level}: {}", self.message)?;
        write!(
            f,
            "  --> {}:{}:{}",
            self.path.display(),
            self.line,
            self.column
        )?;
        if let Some(s) = &self.snippet {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            let caret = " ".repeat(
                s.chars()
                    .take(self.column.saturating_sub(1))
                    .map(|c| if c == '\t' { 1 } else { unicode_cols(c) })
                    .sum(),
            );
            write!(f, "\n{pad} |\n{num} | {s}\n{pad} | {caret}^")?;
        }
        if let Some(h) = &self.help {
            write!(f, "\n   = help: {h}")?;
        }
        Ok(())
    }
}

/// Display width of a character: CJK text takes two columns.
fn unicode_cols(c: char) -> usize {
    if ('\u{1100}'..='\u{115F}').contains(&c)
        || ('\u{2E80}'..='\u{A4CF}').contains(&c)
        || ('\u{AC00}'..='\u{D7A3}').contains(&c)
        || ('\u{F900}'..='\u{FAFF}').contains(&c)
        || ('\u{FF00}'..='\u{FF60}').contains(&c)
    {
        2
    } else {
        1
    }
}

/// The file position of character `offset` of a YAML string scalar's value.
pub fn position_in_scalar<T>(source: &str, scalar: &Spanned<T>, offset: usize) -> (usize, usize) {
    let line = scalar.referenced.line() as usize;
    let column = scalar.referenced.column() as usize;
    let lines: Vec<&str> = source.lines().collect();
    let Some(first) = lines.get(line.saturating_sub(1)) else {
        return (line, column);
    };
    let rest: String = first.chars().skip(column.saturating_sub(1)).collect();
    // Walks the lines of a multi-line scalar: content resumes at each line's indentation,
    // and folding turns a line break into one space, so offsets still count lines.
    let walk = |first_line: usize, first_col: usize| -> (usize, usize) {
        let mut remaining = offset;
        for (i, l) in lines.iter().enumerate().skip(first_line - 1) {
            let start = if i + 1 == first_line {
                first_col - 1
            } else {
                l.chars().take_while(|c| *c == ' ').count()
            };
            let len = l.chars().count().saturating_sub(start);
            if remaining <= len {
                return (i + 1, start + 1 + remaining);
            }
            remaining -= len + 1;
        }
        (line, column)
    };
    match rest.chars().next() {
        Some('\'' | '"') => (line, column + 1 + offset),
        // A block indicator: the content starts on the next line.
        Some('|' | '>') => {
            let next = lines
                .get(line)
                .map_or(1, |l| l.chars().take_while(|c| *c == ' ').count() + 1);
            walk(line + 1, next)
        }
        _ => walk(line, column),
    }
}

/// A diagnostic at the start of a spanned value.
pub fn at<T>(
    path: &Path,
    source: &str,
    value: &Spanned<T>,
    message: impl Into<String>,
) -> Diagnostic {
    Diagnostic::new(
        path,
        value.referenced.line() as usize,
        value.referenced.column() as usize,
        message,
    )
    .with_snippet(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Doc {
        a: Spanned<String>,
        b: Spanned<String>,
        c: Spanned<String>,
    }

    #[test]
    fn offsets_map_into_plain_quoted_and_block_scalars() {
        let src = "a: x > 1\nb: 'y && z'\nc: |\n  first\n  second line\n";
        let d: Doc = serde_saphyr::from_str(src).unwrap();
        assert_eq!(position_in_scalar(src, &d.a, 4), (1, 8));
        assert_eq!(position_in_scalar(src, &d.b, 5), (2, 10));
        assert_eq!(position_in_scalar(src, &d.c, 0), (4, 3));
        assert_eq!(position_in_scalar(src, &d.c, 6), (5, 3));
        assert_eq!(position_in_scalar(src, &d.c, 13), (5, 10));
    }

    #[test]
    fn renders_file_line_column_snippet_caret_and_help() {
        let d = Diagnostic::new(Path::new("r.yaml"), 2, 5, "unknown variable `x`")
            .with_snippet("a: 1\nb: 2 x\n")
            .with_help(Some("valid names: y".into()));
        let text = d.to_string();
        assert!(text.contains("--> r.yaml:2:5"), "{text}");
        assert!(text.contains("2 | b: 2 x\n  |     ^"), "{text}");
        assert!(text.ends_with("= help: valid names: y"), "{text}");
    }
}
