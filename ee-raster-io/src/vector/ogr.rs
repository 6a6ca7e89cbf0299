//! The OGR glue reading and writing share: opening a vector file read-only and GDAL's
//! error messages.

use std::path::Path;

use gdal::{Dataset, GdalOpenFlags};

use crate::Result;

pub(super) use crate::gdal_apps::last_message;

pub(super) fn gdal_message(e: &gdal::errors::GdalError) -> String {
    crate::error::message_of(e)
}

pub(super) fn open_vector(path: &Path, options: &[String]) -> Result<Dataset> {
    crate::gdal_apps::open_read_only(path, GdalOpenFlags::GDAL_OF_VECTOR, options)
}
