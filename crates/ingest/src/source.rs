//! Reads CSV and JSON Lines files row by row, hashing the bytes as they pass, and turns
//! rows that cannot even be split into fields (wrong column count, bad JSON, bad UTF-8)
//! into rejections instead of errors.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::mapping::Fields;
use super::profile::FileFormat;

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

/// Passes bytes through while hashing them, so a file is read once.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// An open table file.
pub struct TableReader {
    path: PathBuf,
    inner: Inner,
}

enum Inner {
    Csv {
        reader: csv::Reader<HashingReader<File>>,
        header: Vec<String>,
        delimiter: u8,
    },
    Jsonl {
        reader: BufReader<HashingReader<File>>,
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

impl TableReader {
    pub fn open(
        path: &Path,
        format: FileFormat,
        delimiter: u8,
    ) -> Result<TableReader, SourceError> {
        let io_err = |source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        if file.metadata().map_err(io_err)?.is_dir() {
            return Err(io_err(io::Error::other("is a directory")));
        }
        let hashing = HashingReader {
            inner: file,
            hasher: Sha256::new(),
        };
        let inner = match format {
            FileFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .delimiter(delimiter)
                    .flexible(true)
                    .from_reader(hashing);
                let header = reader
                    .byte_headers()
                    .map_err(|e| csv_error(path, e))?
                    .iter()
                    .map(|h| String::from_utf8_lossy(h).trim().to_string())
                    .collect::<Vec<_>>();
                if header.iter().all(String::is_empty) {
                    return Err(SourceError::Malformed {
                        path: path.to_path_buf(),
                        message: "empty file: no header row".into(),
                    });
                }
                Inner::Csv {
                    reader,
                    header,
                    delimiter,
                }
            }
            FileFormat::Jsonl => Inner::Jsonl {
                reader: BufReader::with_capacity(1 << 16, hashing),
            },
        };
        Ok(TableReader {
            path: path.to_path_buf(),
            inner,
        })
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
        match self.inner {
            Inner::Csv {
                mut reader,
                header,
                delimiter,
            } => {
                let mut record = csv::ByteRecord::new();
                loop {
                    match reader.read_byte_record(&mut record) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => return Err(csv_error(&path, e)),
                    }
                    let line = record.position().map_or(0, |p| p.line());
                    if record.len() != header.len() {
                        let raw = || join_lossy(&record, delimiter);
                        let reason =
                            format!("expected {} fields, found {}", header.len(), record.len());
                        f(
                            line,
                            RawRow::Rejected {
                                field: None,
                                reason,
                            },
                            &raw,
                        );
                        continue;
                    }
                    // One UTF-8 check of the whole row (csv checks the buffer once and the
                    // field boundaries); the mapper then reads fields as text unchecked.
                    match csv::StringRecord::from_byte_record(std::mem::take(&mut record)) {
                        Ok(text) => {
                            let raw = || join_lossy(text.as_byte_record(), delimiter);
                            f(line, RawRow::Fields(&text), &raw);
                            record = text.into_byte_record();
                        }
                        Err(e) => {
                            record = e.into_byte_record();
                            let raw = || join_lossy(&record, delimiter);
                            let i = (0..record.len())
                                .find(|&i| record.text(i).is_err())
                                .expect("a record that is not UTF-8 has a field that is not");
                            let reason = format!("column {:?} is not valid UTF-8", header[i]);
                            f(
                                line,
                                RawRow::Rejected {
                                    field: Some(header[i].clone()),
                                    reason,
                                },
                                &raw,
                            );
                        }
                    }
                }
                Ok(hex::encode(reader.into_inner().hasher.finalize()))
            }
            Inner::Jsonl { mut reader } => {
                let mut buf = Vec::new();
                let mut line = 0u64;
                loop {
                    buf.clear();
                    let n =
                        reader
                            .read_until(b'\n', &mut buf)
                            .map_err(|source| SourceError::Io {
                                path: path.clone(),
                                source,
                            })?;
                    if n == 0 {
                        break;
                    }
                    line += 1;
                    let text = String::from_utf8_lossy(&buf).trim_end().to_string();
                    if text.trim().is_empty() {
                        continue;
                    }
                    let raw = || text.clone();
                    match json_fields(&buf, keys) {
                        Ok(fields) => f(line, RawRow::Fields(&fields), &raw),
                        Err((field, reason)) => f(line, RawRow::Rejected { field, reason }, &raw),
                    }
                }
                Ok(hex::encode(reader.into_inner().hasher.finalize()))
            }
        }
    }
}

fn csv_error(path: &Path, e: csv::Error) -> SourceError {
    match e.into_kind() {
        csv::ErrorKind::Io(source) => SourceError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => SourceError::Malformed {
            path: path.to_path_buf(),
            message: format!("{other:?}"),
        },
    }
}

fn join_lossy(record: &csv::ByteRecord, delimiter: u8) -> String {
    let mut out = Vec::new();
    for (i, field) in record.iter().enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        out.extend_from_slice(field);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One JSON object's values at the positions of `keys`.
fn json_fields(
    bytes: &[u8],
    keys: &[String],
) -> Result<Vec<Option<String>>, (Option<String>, String)> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| (None, "line is not valid UTF-8".to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| (None, format!("invalid JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err((None, "a JSON Lines row must be an object".to_string()));
    };
    keys.iter()
        .map(|k| match map.get(k) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
            Some(serde_json::Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err((
                Some(k.clone()),
                format!("key {k:?} holds an array or object, expected a scalar"),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(
        path: &Path,
        format: FileFormat,
        keys: &[String],
    ) -> Vec<(u64, Result<String, String>)> {
        let reader = TableReader::open(path, format, b',').unwrap();
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
        let reader = TableReader::open(f.path(), FileFormat::Csv, b',').unwrap();
        let sha = reader.for_each(&[], |_, _, _| {}).unwrap();
        assert_eq!(sha, hex::encode(Sha256::digest(b"a\n1\n")));
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let err = TableReader::open(Path::new("/nonexistent/x.csv"), FileFormat::Csv, b',')
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("/nonexistent/x.csv"), "{err}");
    }
}
