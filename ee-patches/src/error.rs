//! The crate's error type: every failure names the file, the record and what was expected
//! and found.

use std::path::PathBuf;

/// Everything that can go wrong exporting or importing patches.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a raster (or a vector file) through GDAL.
    #[error(transparent)]
    Raster(#[from] ee_raster_io::Error),
    /// Filesystem trouble.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Options that cannot work together or do not fit the raster.
    #[error("{0}")]
    Options(String),
    /// A mixer file that is not Earth Engine's mixer JSON or does not describe a patch grid.
    #[error("{path}: {problem}")]
    Mixer {
        /// The mixer file.
        path: PathBuf,
        /// What was wrong.
        problem: String,
    },
    /// A record that is corrupt or does not fit the patch grid.
    #[error("record {record} ({path}, record {in_file} of that file): {problem}")]
    Record {
        /// Zero-based index of the record over all files, in the order given.
        record: u64,
        /// The file holding it.
        path: PathBuf,
        /// Zero-based index of the record in its file.
        in_file: u64,
        /// What was wrong, with the expected and found sizes.
        problem: String,
    },
    /// A number of records that does not match the mixer.
    #[error("expected {expected} records (the mixer's totalPatches) but found {found} in {files}")]
    RecordCount {
        /// Patches the mixer describes.
        expected: u64,
        /// Records present.
        found: u64,
        /// The files read.
        files: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
