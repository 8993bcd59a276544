//! Reads CSV and JSON Lines files row by row, hashing the bytes as they pass, and turns
//! rows that cannot even be split into fields (wrong column count, bad JSON, bad UTF-8,
//! duplicate JSON keys, over a size limit) into rejections instead of errors.
//!
//! Reading is bounded: no line, field or row is held in memory beyond the profile's
//! [`Limits`]. CSV is split with `csv-core` into buffers this module owns; once a row goes
//! over a limit the rest of it is parsed into a scratch buffer and dropped, so a
//! multi-gigabyte field costs time, not memory. Only regular files are read: a FIFO, a
//! device or a directory is refused before it is opened.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use encoding_rs::Encoding;
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};
use sha2::{Digest, Sha256};

use super::mapping::Fields;
use super::profile::{FileFormat, Limits, RepeatedColumns};

/// A file that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("{path}: not a regular file ({kind}); only regular files are read")]
    NotRegularFile { path: PathBuf, kind: &'static str },
    #[error(
        "{path}: line 1: column {column:?} appears more than once in the header (columns {first} and {second}); \
         rename it, or set `repeated_columns: numbered` in the profile to read `{column}`, `{column}.1`, ..."
    )]
    RepeatedColumn {
        path: PathBuf,
        column: String,
        first: usize,
        second: usize,
    },
    #[error(
        "{path}: unterminated quote starting at line {line}: the quoted field runs to the end of the file (line {end_line})"
    )]
    UnterminatedQuote {
        path: PathBuf,
        line: u64,
        end_line: u64,
    },
    #[error("{path}: line 1: the header row {reason}")]
    HeaderTooLarge { path: PathBuf, reason: String },
}

/// One row refused before or during mapping, kept for quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub source: String,
    pub line: u64,
    pub field: Option<String>,
    pub reason: String,
    pub raw: String,
}

/// How to read a table file.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    pub format: FileFormat,
    pub delimiter: u8,
    pub repeated_columns: RepeatedColumns,
    pub limits: Limits,
    /// The declared text encoding; `None` reads UTF-8, or what a byte order mark says.
    pub encoding: Option<&'static Encoding>,
}

/// Passes the file's bytes through while hashing them, so a file is read once; the hash
/// is of the bytes as stored, before any decoding.
struct HashingReader<R> {
    inner: R,
    /// Shared with the [`TableReader`]: the decoder above it cannot hand it back.
    hasher: Arc<Mutex<Sha256>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(&buf[..n]);
        Ok(n)
    }
}

/// The file as UTF-8: decoded from its declared encoding, or from the one its byte order
/// mark names; otherwise passed through (and checked row by row).
type Input = BufReader<DecodeReaderBytes<HashingReader<File>, Vec<u8>>>;

fn finish(hasher: &Mutex<Sha256>) -> String {
    let h = std::mem::take(&mut *hasher.lock().unwrap_or_else(|e| e.into_inner()));
    hex::encode(h.finalize())
}

/// What a header that is not UTF-8 text probably is, for the error of a profile that
/// does not find its columns: GB18030 (of which GBK is a subset) when it decodes as that
/// without error, as Chinese bank exports usually do; UTF-16 when it is full of NULs.
fn guess_encoding(header: &[u8]) -> String {
    let lead = "line 1: the header is not UTF-8 text";
    if header.iter().filter(|&&b| b == 0).count() * 4 >= header.len() {
        return format!(
            "; {lead}: it has many NUL bytes, as UTF-16 without a byte order mark has: \
             declare `encoding: utf-16le` or `utf-16be` in the profile"
        );
    }
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(header);
    if !had_errors && !text.is_ascii() {
        let shown: String = text.chars().take(80).collect();
        return format!(
            "; {lead}: it reads as GBK/GB18030 (`{}`): declare `encoding: gbk` in the profile (or `encoding: gb18030`, of which GBK is a part)",
            shown.trim()
        );
    }
    format!(
        "; {lead}: declare the file's encoding in the profile (`encoding: gbk`, `gb18030`, `utf-16le`, …)"
    )
}

/// The longest start of `bytes` of at most `max` bytes that ends on a character boundary
/// (bytes that are not UTF-8 at all are cut at `max`).
fn cut_at_char(bytes: &[u8], max: usize) -> &[u8] {
    if bytes.len() <= max {
        return bytes;
    }
    let cut = &bytes[..max];
    match std::str::from_utf8(cut) {
        Err(e) if e.error_len().is_none() => &cut[..e.valid_up_to()],
        _ => cut,
    }
}

/// Bytes of a refused row kept as its `raw` text in quarantine.
const PREVIEW_BYTES: usize = 512;

/// Bytes of a CSV row kept while it is read: the preview, its line break, and more to
/// know it was cut.
const RAW_BYTES: usize = PREVIEW_BYTES + 16;

/// Fields per CSV row beyond which the row is refused unread (bounds the field index).
pub const MAX_FIELDS: usize = 4096;

/// An open table file.
pub struct TableReader {
    path: PathBuf,
    inner: Inner,
    hasher: Arc<Mutex<Sha256>>,
    /// Why the header's names may not be what the profile expects: it was not UTF-8.
    encoding_hint: Option<String>,
    /// The declared encoding the file is decoded from: bytes that are not valid in it
    /// become U+FFFD, and a row holding one is refused rather than loaded garbled.
    replaced: Option<&'static str>,
}

enum Inner {
    Csv {
        /// Boxed: `csv-core` keeps its state tables inline.
        splitter: Box<CsvSplitter>,
        header: Vec<String>,
    },
    Jsonl {
        /// Boxed: the decoder keeps its state inline.
        reader: Box<Input>,
        limits: Limits,
    },
}

/// A row as handed to the mapper: its line and fields, or why it has none.
pub enum RawRow<'a> {
    Fields(&'a dyn Fields),
    Rejected {
        field: Option<String>,
        reason: String,
    },
}

impl RawRow<'_> {
    fn rejected(field: Option<String>, reason: String) -> RawRow<'static> {
        RawRow::Rejected { field, reason }
    }
}

/// Names what a non-regular file is, for the error.
fn file_kind(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a plain file"
    }
}

/// Opens `path` only if it is a regular file: checked before opening (opening a FIFO
/// would block) and again on the open handle (the path may have been swapped).
fn open_regular(path: &Path) -> Result<File, SourceError> {
    let io_err = |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_regular = |t: std::fs::FileType| SourceError::NotRegularFile {
        path: path.to_path_buf(),
        kind: file_kind(t),
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if !meta.file_type().is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let file = File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.file_type().is_file() {
        return Err(not_regular(meta.file_type()));
    }
    Ok(file)
}

impl TableReader {
    pub fn open(path: &Path, options: ReadOptions) -> Result<TableReader, SourceError> {
        let file = open_regular(path)?;
        let hasher = Arc::new(Mutex::new(Sha256::new()));
        // A declared UTF-8 is read as undeclared: passed through and checked row by row
        // (the decoder would replace bad bytes with U+FFFD instead).
        let decoder = DecodeReaderBytesBuilder::new()
            .encoding(options.encoding.filter(|e| *e != encoding_rs::UTF_8))
            .utf8_passthru(true)
            .strip_bom(true)
            .build(HashingReader {
                inner: file,
                hasher: hasher.clone(),
            });
        let input = BufReader::with_capacity(1 << 16, decoder);
        let mut encoding_hint = None;
        let inner = match options.format {
            FileFormat::Csv => {
                let mut splitter =
                    Box::new(CsvSplitter::new(input, options.delimiter, options.limits));
                let header = match splitter.next().map_err(|e| e.into_source(path))? {
                    Split::End => Vec::new(),
                    Split::Over { over, .. } => {
                        return Err(SourceError::HeaderTooLarge {
                            path: path.to_path_buf(),
                            reason: over.describe(&options.limits, "header"),
                        });
                    }
                    Split::Row { .. } => {
                        let garbled = |h: &[u8]| std::str::from_utf8(h).is_err() || h.contains(&0);
                        if splitter.fields().any(garbled) {
                            let row = splitter
                                .fields()
                                .collect::<Vec<_>>()
                                .join(&options.delimiter);
                            encoding_hint = Some(guess_encoding(&row));
                        }
                        splitter
                            .fields()
                            .map(|h| String::from_utf8_lossy(h).trim().to_string())
                            .collect::<Vec<_>>()
                    }
                };
                if header.iter().all(String::is_empty) {
                    return Err(SourceError::Malformed {
                        path: path.to_path_buf(),
                        message: "empty file: no header row".into(),
                    });
                }
                if options.repeated_columns == RepeatedColumns::Reject {
                    check_repeated_columns(path, &header)?;
                }
                Inner::Csv { splitter, header }
            }
            FileFormat::Jsonl => Inner::Jsonl {
                reader: Box::new(input),
                limits: options.limits,
            },
        };
        Ok(TableReader {
            path: path.to_path_buf(),
            inner,
            hasher,
            encoding_hint,
            replaced: options
                .encoding
                .filter(|e| *e != encoding_rs::UTF_8)
                .map(Encoding::name),
        })
    }

    /// Said after a profile's error when the header was not UTF-8 text: which encoding to
    /// declare (`; line 1: the header is not UTF-8 text: it reads as GBK/GB18030 …`).
    pub fn encoding_hint(&self) -> &str {
        self.encoding_hint.as_deref().unwrap_or("")
    }

    /// The CSV header, or `None` for JSON Lines (whose keys are looked up by name).
    pub fn header(&self) -> Option<&[String]> {
        match &self.inner {
            Inner::Csv { header, .. } => Some(header),
            Inner::Jsonl { .. } => None,
        }
    }

    /// Calls `f` with every data row and its 1-based line number; `keys` are the JSON
    /// object keys that become field positions (ignored for CSV). Returns the file's SHA-256.
    pub fn for_each(
        self,
        keys: &[String],
        mut f: impl FnMut(u64, RawRow<'_>, &dyn Fn() -> String),
    ) -> Result<String, SourceError> {
        let path = self.path;
        let hasher = self.hasher;
        let replaced = self.replaced;
        match self.inner {
            Inner::Csv {
                mut splitter,
                header,
            } => {
                let limits = splitter.limits;
                let mut record = csv::ByteRecord::new();
                loop {
                    let (line, over) = match splitter.next().map_err(|e| e.into_source(&path))? {
                        Split::End => break,
                        Split::Row { line } => (line, None),
                        Split::Over { line, over } => (line, Some(over)),
                    };
                    if let Some(over) = over {
                        let field = match over {
                            Over::Field(i) => header.get(i).cloned(),
                            _ => None,
                        };
                        let what = match &field {
                            Some(name) => format!("column {name:?}"),
                            None => "row".to_string(),
                        };
                        let reason = over.describe(&limits, &what);
                        let raw = || splitter.raw_text();
                        f(line, RawRow::rejected(field, reason), &raw);
                        continue;
                    }
                    record.clear();
                    for field in splitter.fields() {
                        record.push_field(field);
                    }
                    if record.len() != header.len() {
                        let raw = || splitter.raw_text();
                        let reason =
                            format!("expected {} fields, found {}", header.len(), record.len());
                        f(line, RawRow::rejected(None, reason), &raw);
                        continue;
                    }
                    // One UTF-8 check of the whole row (csv checks the buffer once and the
                    // field boundaries); the mapper then reads fields as text unchecked.
                    match csv::StringRecord::from_byte_record(std::mem::take(&mut record)) {
                        Ok(text) => {
                            let raw = || splitter.raw_text();
                            match replaced.and_then(|enc| {
                                text.iter()
                                    .position(|v| v.contains('\u{fffd}'))
                                    .map(|i| (i, enc))
                            }) {
                                Some((i, enc)) => {
                                    let reason = format!(
                                        "column {:?} has bytes that are not valid {enc}",
                                        header[i]
                                    );
                                    f(
                                        line,
                                        RawRow::rejected(Some(header[i].clone()), reason),
                                        &raw,
                                    )
                                }
                                None => f(line, RawRow::Fields(&text), &raw),
                            }
                            record = text.into_byte_record();
                        }
                        Err(e) => {
                            record = e.into_byte_record();
                            let raw = || splitter.raw_text();
                            let i = (0..record.len())
                                .find(|&i| std::str::from_utf8(&record[i]).is_err())
                                .expect("a record that is not UTF-8 has a field that is not");
                            let reason = format!(
                                "column {:?} is not valid UTF-8 (if the file is in another encoding, such as GBK, declare it with `encoding:` in the profile)",
                                header[i]
                            );
                            f(
                                line,
                                RawRow::rejected(Some(header[i].clone()), reason),
                                &raw,
                            );
                        }
                    }
                }
                drop(splitter);
                Ok(finish(&hasher))
            }
            Inner::Jsonl { mut reader, limits } => {
                // A JSON Lines row is one line: the tighter of the two limits holds.
                let max_line = limits.max_line_bytes.min(limits.max_record_bytes);
                let mut buf = Vec::new();
                let mut line = 0u64;
                loop {
                    buf.clear();
                    let (n, over) =
                        read_line_capped(&mut reader, &mut buf, max_line).map_err(|source| {
                            SourceError::Io {
                                path: path.clone(),
                                source,
                            }
                        })?;
                    if n == 0 {
                        break;
                    }
                    line += 1;
                    if over {
                        let raw = || preview_text(&buf);
                        let reason = format!(
                            "line is longer than the {max_line}-byte line limit ({n} bytes); skipped unread"
                        );
                        f(line, RawRow::rejected(None, reason), &raw);
                        continue;
                    }
                    let text = String::from_utf8_lossy(&buf).trim_end().to_string();
                    if text.trim().is_empty() {
                        continue;
                    }
                    let raw = || text.clone();
                    if let Some(enc) = replaced.filter(|_| text.contains('\u{fffd}')) {
                        let reason = format!("the line has bytes that are not valid {enc}");
                        f(line, RawRow::rejected(None, reason), &raw);
                        continue;
                    }
                    match json_fields(&buf, keys, limits.max_field_bytes) {
                        Ok(fields) => f(line, RawRow::Fields(&fields), &raw),
                        Err((field, reason)) => f(line, RawRow::Rejected { field, reason }, &raw),
                    }
                }
                drop(reader);
                Ok(finish(&hasher))
            }
        }
    }
}

/// A header that names a column twice makes mapping by name ambiguous.
fn check_repeated_columns(path: &Path, header: &[String]) -> Result<(), SourceError> {
    for (second, name) in header.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        if let Some(first) = header[..second].iter().position(|h| h == name) {
            return Err(SourceError::RepeatedColumn {
                path: path.to_path_buf(),
                column: name.clone(),
                first: first + 1,
                second: second + 1,
            });
        }
    }
    Ok(())
}

/// Which limit a row went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    Line,
    Field(usize),
    Fields,
    Record,
}

impl Over {
    /// "column \"memo\" is longer than the 65536-byte field limit; skipped unread"
    fn describe(self, limits: &Limits, what: &str) -> String {
        match self {
            Over::Line => format!(
                "{what} has a line longer than the {}-byte line limit; skipped unread",
                limits.max_line_bytes
            ),
            Over::Field(_) => format!(
                "{what} is longer than the {}-byte field limit; skipped unread",
                limits.max_field_bytes
            ),
            Over::Fields => format!("{what} has more than {MAX_FIELDS} fields; skipped unread"),
            Over::Record => format!(
                "{what} is longer than the {}-byte row limit; skipped unread",
                limits.max_record_bytes
            ),
        }
    }
}

/// What [`CsvSplitter::next`] found.
enum Split {
    /// A row within the limits; its fields are in the splitter.
    Row {
        line: u64,
    },
    /// A row over a limit, read to its end and dropped.
    Over {
        line: u64,
        over: Over,
    },
    End,
}

enum SplitError {
    Io(io::Error),
    UnterminatedQuote { line: u64, end_line: u64 },
}

impl SplitError {
    fn into_source(self, path: &Path) -> SourceError {
        match self {
            SplitError::Io(source) => SourceError::Io {
                path: path.to_path_buf(),
                source,
            },
            SplitError::UnterminatedQuote { line, end_line } => SourceError::UnterminatedQuote {
                path: path.to_path_buf(),
                line,
                end_line,
            },
        }
    }
}

/// Splits CSV rows with `csv-core` into buffers that never grow past the limits.
struct CsvSplitter {
    core: csv_core::Reader,
    input: Input,
    limits: Limits,
    /// Unquoted bytes of the current row (at most `max_record_bytes`), and field ends.
    out: Vec<u8>,
    ends: Vec<usize>,
    /// How much of `out` and `ends` the current row filled (up to where it went over).
    kept: usize,
    kept_ends: usize,
    /// Where the rest of a row over a limit is parsed and dropped.
    scratch: Vec<u8>,
    scratch_ends: Vec<usize>,
    scanner: Scanner,
    /// The current row's bytes as read (quotes and all), up to [`RAW_BYTES`]: what
    /// quarantine keeps of a refused row.
    raw: Vec<u8>,
}

impl CsvSplitter {
    fn new(input: Input, delimiter: u8, limits: Limits) -> CsvSplitter {
        CsvSplitter {
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            input,
            limits,
            out: vec![0; 1024.min(limits.max_record_bytes.max(1))],
            ends: vec![0; 32],
            kept: 0,
            kept_ends: 0,
            scratch: vec![0; 1 << 14],
            scratch_ends: vec![0; 256],
            scanner: Scanner::new(delimiter),
            raw: Vec::with_capacity(RAW_BYTES),
        }
    }

    /// The current row as the file wrote it (decoded to UTF-8), without the line breaks
    /// around it; cut at [`PREVIEW_BYTES`] with `...`.
    fn raw_text(&self) -> String {
        let full = self.raw.len() >= RAW_BYTES;
        let mut row = &self.raw[..];
        if !full {
            row = row.strip_suffix(b"\n").unwrap_or(row);
            row = row.strip_suffix(b"\r").unwrap_or(row);
        }
        let mut text = String::from_utf8_lossy(cut_at_char(row, PREVIEW_BYTES)).into_owned();
        if full || row.len() > PREVIEW_BYTES {
            text.push_str("...");
        }
        text
    }

    /// The fields of the row [`Split::Row`] returned.
    fn fields(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends[..self.kept_ends].iter().map(move |&end| {
            let field = &self.out[start..end];
            start = end;
            field
        })
    }

    /// Reads the next row, keeping at most the limits of it in memory.
    fn next(&mut self) -> Result<Split, SplitError> {
        use csv_core::ReadRecordResult as R;
        let limits = self.limits;
        let (mut raw, mut pos) = (0usize, 0usize);
        let (mut field_start, mut field_index) = (0usize, 0usize);
        let mut over: Option<Over> = None;
        self.kept = 0;
        self.kept_ends = 0;
        self.raw.clear();
        loop {
            let input = self.input.fill_buf().map_err(SplitError::Io)?;
            if input.is_empty() && self.scanner.state == ScanState::InQuoted {
                return Err(SplitError::UnterminatedQuote {
                    line: self.scanner.quote_line,
                    end_line: self.scanner.line,
                });
            }
            let (res, nin, nout, nend) = match over {
                None => self.core.read_record(
                    input,
                    &mut self.out[self.kept..],
                    &mut self.ends[self.kept_ends..],
                ),
                Some(_) => self
                    .core
                    .read_record(input, &mut self.scratch, &mut self.scratch_ends),
            };
            let line_over = self.scanner.scan(&input[..nin], limits.max_line_bytes);
            let mut read = &input[..nin];
            if self.raw.is_empty() {
                // The line break that ended the row before, and blank lines.
                let start = read.iter().position(|&b| b != b'\n' && b != b'\r');
                read = &read[start.unwrap_or(read.len())..];
            }
            let room = RAW_BYTES.saturating_sub(self.raw.len());
            self.raw.extend_from_slice(&read[..read.len().min(room)]);
            self.input.consume(nin);
            raw += nin;
            pos += nout;
            let new_ends = match over {
                None => &self.ends[self.kept_ends..self.kept_ends + nend],
                Some(_) => &self.scratch_ends[..nend],
            };
            let mut long_field = None;
            for &end in new_ends {
                if end - field_start > limits.max_field_bytes && long_field.is_none() {
                    long_field = Some(field_index);
                }
                field_start = end;
                field_index += 1;
            }
            if over.is_none() {
                self.kept += nout;
                self.kept_ends += nend;
                let open_field_long = pos - field_start > limits.max_field_bytes;
                over = if let Some(i) = long_field {
                    Some(Over::Field(i))
                } else if open_field_long {
                    Some(Over::Field(field_index))
                } else if line_over {
                    Some(Over::Line)
                } else if raw > limits.max_record_bytes {
                    Some(Over::Record)
                } else {
                    None
                };
            }
            match res {
                R::Record => {
                    let line = self.scanner.row_line;
                    return Ok(match over {
                        None => Split::Row { line },
                        Some(over) => Split::Over { line, over },
                    });
                }
                R::End => return Ok(Split::End),
                R::InputEmpty => {}
                R::OutputFull if over.is_none() => {
                    if self.out.len() >= limits.max_record_bytes {
                        over = Some(Over::Record);
                    } else {
                        let len = (self.out.len() * 2).min(limits.max_record_bytes);
                        self.out.resize(len, 0);
                    }
                }
                R::OutputEndsFull if over.is_none() => {
                    if self.ends.len() >= MAX_FIELDS {
                        over = Some(Over::Fields);
                    } else {
                        let len = (self.ends.len() * 2).min(MAX_FIELDS);
                        self.ends.resize(len, 0);
                    }
                }
                R::OutputFull | R::OutputEndsFull => {}
            }
        }
    }
}

/// Where a [`Scanner`] is in the CSV grammar (the one `csv-core` is configured with:
/// `"` quotes, doubled inside quotes; `\r`, `\n` or `\r\n` end a row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanState {
    StartRow,
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
}

/// Follows the bytes `csv-core` consumes to know what it does not tell: the line each row
/// starts on (blank lines and `\r\n` counted right), whether a quote is still open and
/// where it opened, and the length of each physical line.
struct Scanner {
    delimiter: u8,
    state: ScanState,
    /// 1-based line of the next byte, of the current row's first byte, of the open quote.
    line: u64,
    row_line: u64,
    quote_line: u64,
    /// Bytes of the current physical line, and whether the last one was `\r`.
    line_len: usize,
    cr: bool,
    started: bool,
}

impl Scanner {
    fn new(delimiter: u8) -> Scanner {
        Scanner {
            delimiter,
            state: ScanState::StartRow,
            line: 1,
            row_line: 1,
            quote_line: 1,
            line_len: 0,
            cr: false,
            started: false,
        }
    }

    /// Follows `bytes`; true when a physical line in them is longer than `max_line`.
    fn scan(&mut self, mut bytes: &[u8], max_line: usize) -> bool {
        use ScanState::*;
        if !self.started && !bytes.is_empty() {
            self.started = true;
            // csv-core drops a UTF-8 byte order mark at the start of the file.
            bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        }
        let mut over = false;
        for &b in bytes {
            if b == b'\n' {
                over |= self.line_len - usize::from(self.cr) > max_line;
                self.line += 1;
                self.line_len = 0;
                self.cr = false;
            } else {
                self.line_len += 1;
                self.cr = b == b'\r';
            }
            let end = b == b'\n' || b == b'\r';
            if self.state == StartRow {
                if end {
                    continue;
                }
                self.row_line = self.line;
                self.state = StartField;
            }
            self.state = match (self.state, b) {
                (InQuoted, b'"') => QuoteInQuoted,
                (InQuoted, _) => InQuoted,
                (StartField, b'"') => {
                    self.quote_line = self.line;
                    InQuoted
                }
                (QuoteInQuoted, b'"') => InQuoted,
                (_, d) if d == self.delimiter => StartField,
                _ if end => StartRow,
                _ => InField,
            };
        }
        // A trailing `\r` may yet turn out to be part of a `\r\n`.
        over || self.line_len > max_line.saturating_add(1)
    }
}

/// Reads one line into `buf`, keeping at most `max` bytes of it plus its `\n`; returns
/// the bytes consumed and whether the line (without `\n` or `\r\n`) was longer than `max`.
fn read_line_capped(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<(usize, bool)> {
    let cap = max.saturating_add(2);
    let mut total = 0;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let room = cap.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let n = chunk.len();
        reader.consume(n);
        total += n;
        if done {
            break;
        }
    }
    let kept = buf.len();
    let content = buf.strip_suffix(b"\n").unwrap_or(buf);
    let content = content.strip_suffix(b"\r").unwrap_or(content);
    let over = total > kept || content.len() > max;
    Ok((total, over))
}

/// The start of a refused row as text, cut at [`PREVIEW_BYTES`].
fn preview_text(bytes: &[u8]) -> String {
    let cut = cut_at_char(bytes, PREVIEW_BYTES);
    let mut text = String::from_utf8_lossy(cut).trim_end().to_string();
    if bytes.len() > PREVIEW_BYTES {
        text.push_str("...");
    }
    text
}

/// A JSON object's members in order, duplicates kept (serde_json's map keeps the last).
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> serde::de::Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(MembersVisitor)
    }
}

/// One JSON object's values at the positions of `keys`.
fn json_fields(
    bytes: &[u8],
    keys: &[String],
    max_field: usize,
) -> Result<Vec<Option<String>>, (Option<String>, String)> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| (None, "line is not valid UTF-8".to_string()))?;
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => (None, "a JSON Lines row must be an object".to_string()),
            Err(e) => (None, format!("invalid JSON: {e}")),
        });
    }
    let Members(members) =
        serde_json::from_str(text).map_err(|e| (None, format!("invalid JSON: {e}")))?;
    let mut seen = HashSet::with_capacity(members.len());
    for (k, _) in &members {
        if !seen.insert(k.as_str()) {
            return Err((
                Some(k.clone()),
                format!("key {k:?} appears more than once in the object"),
            ));
        }
    }
    let get = |k: &str| members.iter().find(|(m, _)| m == k).map(|(_, v)| v);
    keys.iter()
        .map(|k| {
            let value = match get(k) {
                None | Some(serde_json::Value::Null) => return Ok(None),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                Some(serde_json::Value::Bool(b)) => b.to_string(),
                Some(_) => {
                    return Err((
                        Some(k.clone()),
                        format!("key {k:?} holds an array or object, expected a scalar"),
                    ));
                }
            };
            if value.len() > max_field {
                return Err((
                    Some(k.clone()),
                    format!(
                        "key {k:?} is longer than the {max_field}-byte field limit ({} bytes)",
                        value.len()
                    ),
                ));
            }
            Ok(Some(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn options(format: FileFormat) -> ReadOptions {
        ReadOptions {
            format,
            delimiter: b',',
            repeated_columns: RepeatedColumns::Reject,
            limits: Limits::default(),
            encoding: None,
        }
    }

    fn collect(
        path: &Path,
        format: FileFormat,
        keys: &[String],
    ) -> Vec<(u64, Result<String, String>)> {
        let reader = TableReader::open(path, options(format)).unwrap();
        let mut out = Vec::new();
        reader
            .for_each(keys, |line, row, _| {
                out.push((
                    line,
                    match row {
                        RawRow::Fields(f) => Ok(f.text(0).unwrap_or("?").to_string()),
                        RawRow::Rejected { reason, .. } => Err(reason),
                    },
                ))
            })
            .unwrap();
        out
    }

    #[test]
    fn csv_rows_with_wrong_width_or_bad_utf8_are_rejected_with_lines() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"a,b\n1,2\n3\n\xff,4\n5,6\n").unwrap();
        let rows = collect(f.path(), FileFormat::Csv, &[]);
        assert_eq!(rows[0], (2, Ok("1".into())));
        assert_eq!(rows[1].0, 3);
        assert!(
            rows[1]
                .1
                .as_ref()
                .unwrap_err()
                .contains("expected 2 fields")
        );
        assert_eq!(rows[2].0, 4);
        assert!(rows[2].1.as_ref().unwrap_err().contains("UTF-8"));
        assert_eq!(rows[3], (5, Ok("5".into())));
    }

    #[test]
    fn a_rejected_row_is_kept_byte_for_byte() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        // Quoted where it need not be, quotes doubled, CRLF line ends, a blank line.
        let row = "\"x\",\"23,008.77\",\"say \"\"hi\"\"\",人民币";
        let long = format!("1,{}", "9".repeat(600));
        f.write_all(format!("a,b,c\r\n\r\n{row}\r\n{long}\r\n").as_bytes())
            .unwrap();
        let reader = TableReader::open(f.path(), options(FileFormat::Csv)).unwrap();
        let mut raws = Vec::new();
        reader
            .for_each(&[], |line, _, raw| raws.push((line, raw())))
            .unwrap();
        assert_eq!(
            raws[0],
            (3, row.to_string()),
            "four fields under a three-column header"
        );
        assert_eq!(raws[1].0, 4);
        assert_eq!(raws[1].1, format!("{}...", &long[..PREVIEW_BYTES]));
    }

    #[test]
    fn jsonl_rows_map_keys_and_reject_bad_json() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"{\"a\": 1.5}\n\n{oops\n[1]\n{\"a\":\"x\"}\n")
            .unwrap();
        let rows = collect(f.path(), FileFormat::Jsonl, &["a".to_string()]);
        assert_eq!(rows[0], (1, Ok("1.5".into())));
        assert_eq!(rows[1].0, 3);
        assert!(rows[1].1.as_ref().unwrap_err().contains("invalid JSON"));
        assert!(rows[2].1.as_ref().unwrap_err().contains("object"));
        assert_eq!(rows[3], (5, Ok("x".into())));
    }

    #[test]
    fn file_hash_covers_every_byte() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"a\n1\n").unwrap();
        let reader = TableReader::open(f.path(), options(FileFormat::Csv)).unwrap();
        let sha = reader.for_each(&[], |_, _, _| {}).unwrap();
        assert_eq!(sha, hex::encode(Sha256::digest(b"a\n1\n")));
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let err = TableReader::open(Path::new("/nonexistent/x.csv"), options(FileFormat::Csv))
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("/nonexistent/x.csv"), "{err}");
    }

    fn rejections(
        path: &Path,
        format: FileFormat,
        limits: Limits,
    ) -> Vec<(u64, Result<String, String>)> {
        let reader = TableReader::open(
            path,
            ReadOptions {
                limits,
                ..options(format)
            },
        )
        .unwrap();
        let mut out = Vec::new();
        reader
            .for_each(&["a".to_string(), "b".to_string()], |line, row, raw| {
                out.push((
                    line,
                    match row {
                        RawRow::Fields(f) => Ok(f.text(0).unwrap_or("?").to_string()),
                        RawRow::Rejected { field, reason } => {
                            assert!(raw().len() <= PREVIEW_BYTES + 3);
                            Err(format!("{field:?}: {reason}"))
                        }
                    },
                ))
            })
            .unwrap();
        out
    }

    /// A file of `before`, 50 MB of `y`, `after`.
    fn with_50_mb_value(before: &[u8], after: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(before).unwrap();
        let chunk = vec![b'y'; 1 << 20];
        for _ in 0..50 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(after).unwrap();
        f
    }

    #[test]
    fn a_multi_megabyte_field_is_quarantined_not_allocated() {
        let f = with_50_mb_value(b"a,b\n1,x\n2,", b"\n3,z\n");
        let limits = Limits::default();
        // The splitter's buffers stay near the field limit while 50 MB pass through.
        let input = BufReader::new(DecodeReaderBytesBuilder::new().utf8_passthru(true).build(
            HashingReader {
                inner: File::open(f.path()).unwrap(),
                hasher: Arc::default(),
            },
        ));
        let mut splitter = CsvSplitter::new(input, b',', limits);
        let mut splits = Vec::new();
        loop {
            match splitter.next().ok().unwrap() {
                Split::End => break,
                Split::Row { line } => splits.push((line, None)),
                Split::Over { line, over } => splits.push((line, Some(over))),
            }
            assert!(splitter.out.len() <= 2 * limits.max_field_bytes);
        }
        assert_eq!(
            splits,
            [(1, None), (2, None), (3, Some(Over::Field(1))), (4, None)]
        );
        let rows = rejections(f.path(), FileFormat::Csv, limits);
        assert_eq!(rows[0], (2, Ok("1".into())));
        assert_eq!(rows[1].0, 3);
        let reason = rows[1].1.as_ref().unwrap_err();
        assert!(
            reason.contains("Some(\"b\")") && reason.contains("65536-byte field limit"),
            "{reason}"
        );
        assert_eq!(rows[2], (4, Ok("3".into())));
    }

    #[test]
    fn a_multi_megabyte_json_line_is_quarantined_not_allocated() {
        let f = with_50_mb_value(b"{\"a\": 1}\n{\"a\": \"", b"\"}\n{\"a\": 3}\n");
        let rows = rejections(f.path(), FileFormat::Jsonl, Limits::default());
        assert_eq!(rows[0], (1, Ok("1".into())));
        let reason = rows[1].1.as_ref().unwrap_err();
        assert!(reason.contains("1048576-byte line limit"), "{reason}");
        assert_eq!(rows[2], (3, Ok("3".into())));
    }

    #[test]
    fn line_field_and_row_limits_each_quarantine_their_row() {
        let limits = Limits {
            max_line_bytes: 12,
            max_field_bytes: 6,
            max_record_bytes: 20,
        };
        let mut f = tempfile::NamedTempFile::new().unwrap();
        // line 3: a field of 7 bytes; line 4: a line of 13 bytes in short fields;
        // lines 5-8: a row of short lines and quoted fields, 26 bytes in all.
        f.write_all(b"a,b\n1,ok\n2,1234567\n3,1,2,3,4,5,6\n4,\"ab\ncd\",\"ef\ngh\",\"ij\nkl\"\n5,ok\r\n\r\n6,123456\r\n").unwrap();
        let rows = rejections(f.path(), FileFormat::Csv, limits);
        let reasons: Vec<_> = rows.iter().map(|(l, r)| (*l, r.clone().err())).collect();
        assert_eq!(reasons[0], (2, None));
        assert!(
            reasons[1]
                .1
                .as_ref()
                .unwrap()
                .contains("6-byte field limit"),
            "{rows:?}"
        );
        assert!(
            reasons[2]
                .1
                .as_ref()
                .unwrap()
                .contains("12-byte line limit"),
            "{rows:?}"
        );
        assert_eq!(reasons[3].0, 5);
        assert!(
            reasons[3].1.as_ref().unwrap().contains("20-byte row limit"),
            "{rows:?}"
        );
        // Terminators do not count towards the line limit; fields exactly at a limit pass.
        // Blank lines and `\r\n` count as the lines they are.
        assert_eq!(rows[4], (9, Ok("5".into())));
        assert_eq!(rows[5], (11, Ok("6".into())));
    }

    #[test]
    fn an_unterminated_quote_is_reported_with_its_line() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"a,b\n1,ok\n2,\"never closed\n3,x\n4,y\n")
            .unwrap();
        let reader = TableReader::open(f.path(), options(FileFormat::Csv)).unwrap();
        let err = reader.for_each(&[], |_, _, _| {}).unwrap_err().to_string();
        assert!(
            err.contains("unterminated quote starting at line 3"),
            "{err}"
        );
        // Also when the swallowed rest of the file is over the row limit.
        let limits = Limits {
            max_record_bytes: 8,
            ..Limits::default()
        };
        let reader = TableReader::open(
            f.path(),
            ReadOptions {
                limits,
                ..options(FileFormat::Csv)
            },
        )
        .unwrap();
        let err = reader.for_each(&[], |_, _, _| {}).unwrap_err().to_string();
        assert!(
            err.contains("unterminated quote starting at line 3"),
            "{err}"
        );
        // A quoted field with line breaks that is closed is a row like any other.
        let mut g = tempfile::NamedTempFile::new().unwrap();
        g.write_all(b"a,b\n1,\"two\nlines\"\n2,\"\"\"quoted\"\"\"")
            .unwrap();
        let rows = collect(g.path(), FileFormat::Csv, &[]);
        assert_eq!(rows, [(2, Ok("1".into())), (4, Ok("2".into()))]);
    }

    #[test]
    fn declared_and_marked_encodings_are_decoded_and_others_are_named() {
        let text = "账号,金额\r\n甲,1\r\n乙,2\r\n";
        let read = |bytes: &[u8], encoding| {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(bytes).unwrap();
            let options = ReadOptions {
                encoding,
                ..options(FileFormat::Csv)
            };
            let reader = TableReader::open(f.path(), options)?;
            let header = reader.header().unwrap().to_vec();
            let mut rows = Vec::new();
            let sha = reader.for_each(&[], |line, row, _| {
                if let RawRow::Fields(f) = row {
                    rows.push((line, f.text(0).unwrap().to_string()));
                }
            })?;
            assert_eq!(
                sha,
                hex::encode(Sha256::digest(bytes)),
                "the hash is of the stored bytes"
            );
            Ok::<_, SourceError>((header, rows))
        };
        let expected = (
            vec!["账号".to_string(), "金额".to_string()],
            vec![(2, "甲".to_string()), (3, "乙".to_string())],
        );
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert_eq!(read(&gbk, Some(encoding_rs::GBK)).unwrap(), expected);
        let mut utf16 = vec![0xff, 0xfe];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(
            read(&utf16, None).unwrap(),
            expected,
            "a UTF-16 byte order mark decides"
        );
        let bom: Vec<u8> = [&b"\xef\xbb\xbf"[..], text.as_bytes()].concat();
        assert_eq!(read(&bom, None).unwrap(), expected);
        // Undeclared, the header's names are garbled: the hint says what to declare.
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&gbk).unwrap();
        let reader = TableReader::open(f.path(), options(FileFormat::Csv)).unwrap();
        let hint = reader.encoding_hint();
        assert!(hint.contains("line 1: the header is not UTF-8"), "{hint}");
        assert!(
            hint.contains("`encoding: gbk`") && hint.contains("账号,金额"),
            "{hint}"
        );
        // A byte that is not GBK is refused, not loaded as U+FFFD.
        let mut bad = gbk.to_vec();
        bad.extend_from_slice(b"\x81\x20,3\r\n");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&bad).unwrap();
        let reader = TableReader::open(
            f.path(),
            ReadOptions {
                encoding: Some(encoding_rs::GBK),
                ..options(FileFormat::Csv)
            },
        )
        .unwrap();
        let mut refused = Vec::new();
        reader
            .for_each(&[], |line, row, _| {
                if let RawRow::Rejected { reason, .. } = row {
                    refused.push((line, reason));
                }
            })
            .unwrap();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, 4);
        assert!(refused[0].1.contains("not valid GBK"), "{refused:?}");
    }

    #[test]
    fn a_repeated_header_column_is_a_file_error_naming_it() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"amount,to,amount\n1,2,3\n").unwrap();
        let err = TableReader::open(f.path(), options(FileFormat::Csv))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("column \"amount\" appears more than once"),
            "{err}"
        );
        assert!(err.contains("columns 1 and 3"), "{err}");
        let numbered = ReadOptions {
            repeated_columns: RepeatedColumns::Numbered,
            ..options(FileFormat::Csv)
        };
        assert!(TableReader::open(f.path(), numbered).is_ok());
    }

    #[test]
    fn a_duplicate_json_key_quarantines_the_row_naming_the_key() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"{\"a\": \"1\", \"b\": 2, \"a\": \"9\"}\n{\"a\": \"3\"}\n")
            .unwrap();
        let rows = rejections(f.path(), FileFormat::Jsonl, Limits::default());
        let reason = rows[0].1.as_ref().unwrap_err();
        assert!(
            reason.starts_with("Some(\"a\")")
                && reason.contains("key \"a\" appears more than once"),
            "{reason}"
        );
        assert_eq!(rows[1], (2, Ok("3".into())));
    }

    #[test]
    fn non_regular_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let err = TableReader::open(dir.path(), options(FileFormat::Csv))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a regular file (a directory)"), "{err}");
        #[cfg(unix)]
        {
            let err = TableReader::open(Path::new("/dev/zero"), options(FileFormat::Jsonl))
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("not a regular file (a device)"), "{err}");
            let fifo = dir.path().join("fifo.csv");
            let made = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap();
            assert!(made.success());
            // Opening a FIFO without a writer would block forever: this returns at once.
            let err = TableReader::open(&fifo, options(FileFormat::Csv))
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("not a regular file (a FIFO)"), "{err}");
        }
    }
}
