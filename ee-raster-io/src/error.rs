//! The crate's error type: every error names the file (and band, window) it concerns.

use std::path::PathBuf;

/// Everything that can go wrong reading, warping or writing rasters.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// GDAL could not open a file.
    #[error("cannot open {path}: {message}")]
    Open {
        /// The file.
        path: PathBuf,
        /// GDAL's message.
        message: String,
    },
    /// A GDAL call failed on an open file.
    #[error("{path}: {operation}: {message}")]
    Gdal {
        /// The file.
        path: PathBuf,
        /// What was being done (`reading band 2 window ...`).
        operation: String,
        /// GDAL's message.
        message: String,
    },
    /// A band asked for that the file does not have.
    #[error("{path}: no band {band} (the file has {available})")]
    NoSuchBand {
        /// The file.
        path: PathBuf,
        /// The band asked for.
        band: String,
        /// What the file offers.
        available: String,
    },
    /// Inputs that cannot be combined or a grid that cannot be used.
    #[error("{0}")]
    Grid(String),
    /// A band type with no GDAL equivalent (or the reverse).
    #[error("{0}")]
    Unsupported(String),
    /// A vector file or layer that cannot be used as asked (layers, fields, drivers).
    #[error("{path}: {message}")]
    Vector {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// One feature's value that cannot be used (missing, not a number).
    #[error("{path}: {feature}, field {field:?}: {message}")]
    Feature {
        /// The file.
        path: PathBuf,
        /// The feature (`feature 3 (FID 7)`).
        feature: String,
        /// The field.
        field: String,
        /// What was wrong.
        message: String,
    },
    /// Filesystem trouble around the output.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps a GDAL error with the file and operation.
pub(crate) fn gdal_err(
    path: &std::path::Path,
    operation: impl Into<String>,
) -> impl FnOnce(gdal::errors::GdalError) -> Error {
    let path = path.to_path_buf();
    let operation = operation.into();
    move |e| Error::Gdal {
        path,
        operation,
        message: message_of(&e),
    }
}

/// GDAL's own message text, without the crate's wrapping.
pub(crate) fn message_of(e: &gdal::errors::GdalError) -> String {
    use gdal::errors::GdalError;
    match e {
        GdalError::CplError { msg, .. } => msg.trim().to_string(),
        GdalError::NullPointer { msg, method_name } if !msg.trim().is_empty() => {
            format!("{} ({method_name})", msg.trim())
        }
        other => other.to_string(),
    }
}
