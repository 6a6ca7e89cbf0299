//! The OGR glue reading and writing share: opening a vector file read-only and GDAL's
//! error messages.

use std::ffi::CStr;
use std::path::Path;

use gdal::{Dataset, GdalOpenFlags};

use crate::Result;

pub(super) fn last_message() -> String {
    // SAFETY: CPLGetLastErrorMsg returns a valid NUL-terminated string owned by GDAL.
    unsafe {
        let msg = CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg())
            .to_string_lossy()
            .trim()
            .to_string();
        gdal_sys::CPLErrorReset();
        msg
    }
}

pub(super) fn gdal_message(e: &gdal::errors::GdalError) -> String {
    crate::error::message_of(e)
}

pub(super) fn open_vector(path: &Path, options: &[String]) -> Result<Dataset> {
    crate::gdal_apps::open_read_only(path, GdalOpenFlags::GDAL_OF_VECTOR, options)
}
