//! Output CSV files: created with `\n` line ends and no automatic header, and the errors
//! that name the file.

use std::fs::File;
use std::path::Path;

use super::GenerateError;

pub(crate) type CsvOut = csv::Writer<File>;

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> GenerateError + '_ {
    move |source| GenerateError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn csv_error(path: &Path) -> impl FnOnce(csv::Error) -> GenerateError + '_ {
    move |source| GenerateError::Csv {
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn create_csv(path: &Path) -> Result<CsvOut, GenerateError> {
    let file = File::create(path).map_err(io_error(path))?;
    Ok(csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .buffer_capacity(1 << 16)
        .from_writer(file))
}

pub(crate) fn finish_csv(mut out: CsvOut, path: &Path) -> Result<(), GenerateError> {
    out.flush().map_err(io_error(path))
}
