//! Ground truth. Scheme-transaction links are collected as (scheme, tx number) pairs; past a
//! memory budget they spill to sorted run files in the output directory, merged at the end,
//! so memory stays bounded however long the run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::GenerateError;
use super::csvio::{create_csv, csv_error, finish_csv, io_error};
use super::population::Population;
use super::tx::push_tx_id;

pub(crate) const TRUTH_HEADER: &[&str] = &["scheme_id", "typology", "kind", "id", "role"];
const RECORD_BYTES: usize = 12;

struct Run {
    path: PathBuf,
    records: u64,
}

pub(crate) struct TruthSpill {
    dir: PathBuf,
    budget: usize,
    links: Vec<(u32, u64)>,
    runs: Vec<Run>,
}

impl TruthSpill {
    pub(crate) fn new(dir: &Path, budget: usize) -> TruthSpill {
        TruthSpill {
            dir: dir.to_owned(),
            budget: budget.max(1),
            links: Vec::new(),
            runs: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, scheme: u32, tx: u64) -> Result<(), GenerateError> {
        self.links.push((scheme, tx));
        if self.links.len() >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), GenerateError> {
        self.links.sort_unstable();
        let path = self
            .dir
            .join(format!(".truth-run-{:04}.bin", self.runs.len()));
        let file = File::create(&path).map_err(io_error(&path))?;
        let mut out = BufWriter::new(file);
        for &(scheme, tx) in &self.links {
            out.write_all(&scheme.to_le_bytes())
                .map_err(io_error(&path))?;
            out.write_all(&tx.to_le_bytes()).map_err(io_error(&path))?;
        }
        out.flush().map_err(io_error(&path))?;
        self.runs.push(Run {
            path,
            records: self.links.len() as u64,
        });
        self.links.clear();
        Ok(())
    }

    /// Writes truth.csv sorted by scheme id, kind, id; returns the row count.
    pub(crate) fn write(mut self, pop: &Population, path: &Path) -> Result<u64, GenerateError> {
        self.links.sort_unstable();
        let mut sources: Vec<Source> = Vec::with_capacity(self.runs.len() + 1);
        sources.push(Source::Memory(std::mem::take(&mut self.links).into_iter()));
        for run in &self.runs {
            let file = File::open(&run.path).map_err(io_error(&run.path))?;
            sources.push(Source::File {
                reader: BufReader::new(file),
                left: run.records,
                path: run.path.clone(),
            });
        }
        let mut heap = BinaryHeap::new();
        for (i, source) in sources.iter_mut().enumerate() {
            if let Some((scheme, tx)) = source.next()? {
                heap.push(Reverse((scheme, tx, i)));
            }
        }

        let mut out = create_csv(path)?;
        out.write_record(TRUTH_HEADER).map_err(csv_error(path))?;
        let mut rows = 0u64;
        let mut tx_id = String::new();
        for (index, scheme) in pop.schemes.iter().enumerate() {
            for &(account, role) in &scheme.members {
                let id = &pop.account_ids[account as usize];
                out.write_record([scheme.id.as_str(), scheme.typology, "account", id, role])
                    .map_err(csv_error(path))?;
                rows += 1;
            }
            while let Some(&Reverse((s, tx, i))) = heap.peek() {
                if s as usize != index {
                    break;
                }
                heap.pop();
                tx_id.clear();
                push_tx_id(&mut tx_id, tx);
                out.write_record([
                    scheme.id.as_str(),
                    scheme.typology,
                    "transaction",
                    tx_id.as_str(),
                    "",
                ])
                .map_err(csv_error(path))?;
                rows += 1;
                if let Some((scheme, tx)) = sources[i].next()? {
                    heap.push(Reverse((scheme, tx, i)));
                }
            }
        }
        finish_csv(out, path)?;
        drop(sources);
        for run in std::mem::take(&mut self.runs) {
            fs::remove_file(&run.path).map_err(io_error(&run.path))?;
        }
        Ok(rows)
    }
}

impl Drop for TruthSpill {
    fn drop(&mut self) {
        // Only reached with runs left on an error path; best-effort cleanup.
        for run in &self.runs {
            let _ = fs::remove_file(&run.path);
        }
    }
}

enum Source {
    Memory(std::vec::IntoIter<(u32, u64)>),
    File {
        reader: BufReader<File>,
        left: u64,
        path: PathBuf,
    },
}

impl Source {
    fn next(&mut self) -> Result<Option<(u32, u64)>, GenerateError> {
        match self {
            Source::Memory(links) => Ok(links.next()),
            Source::File { reader, left, path } => {
                if *left == 0 {
                    return Ok(None);
                }
                *left -= 1;
                let mut bytes = [0u8; RECORD_BYTES];
                reader.read_exact(&mut bytes).map_err(io_error(path))?;
                let (scheme, tx) = bytes.split_at(4);
                let scheme = u32::from_le_bytes(scheme.try_into().unwrap_or_default());
                let tx = u64::from_le_bytes(tx.try_into().unwrap_or_default());
                Ok(Some((scheme, tx)))
            }
        }
    }
}
