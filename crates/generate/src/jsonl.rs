//! JSON Lines output: rewrites a generated CSV file as JSON Lines, one object per row with
//! the header's names as keys (empty fields left out), streaming in bounded memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::GenerateError;

/// Writes `path` with the extension `.jsonl` beside it and removes the CSV.
pub fn csv_to_jsonl(path: &Path) -> Result<PathBuf, GenerateError> {
    let out_path = path.with_extension("jsonl");
    let csv_err = |source| GenerateError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let io_err = |source| GenerateError::Io {
        path: out_path.clone(),
        source,
    };
    let mut reader = csv::Reader::from_path(path).map_err(csv_err)?;
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(str::to_string)
        .collect();
    let mut out = BufWriter::new(File::create(&out_path).map_err(io_err)?);
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(csv_err)? {
        let row: serde_json::Map<String, serde_json::Value> = header
            .iter()
            .zip(record.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.to_string())))
            .collect();
        serde_json::to_writer(&mut out, &row).map_err(|e| io_err(e.into()))?;
        out.write_all(b"\n").map_err(io_err)?;
    }
    out.flush().map_err(io_err)?;
    std::fs::remove_file(path).map_err(|source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(out_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_objects_without_empty_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "tx_id,memo,amount\nt1,,1.50\nt2,\"a, b\",2.00\n").unwrap();
        let out = csv_to_jsonl(&p).unwrap();
        let text = std::fs::read_to_string(out).unwrap();
        assert_eq!(
            text,
            "{\"amount\":\"1.50\",\"tx_id\":\"t1\"}\n{\"amount\":\"2.00\",\"memo\":\"a, b\",\"tx_id\":\"t2\"}\n"
        );
        assert!(!p.exists());
    }
}
