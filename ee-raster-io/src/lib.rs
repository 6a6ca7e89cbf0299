//! Raster input and output through GDAL for tiled inference.
//!
//! - [`RasterSource`]: open anything GDAL reads (GeoTIFF, COG, VRT, `/vsicurl/`...), list its
//!   bands by index and description, optionally warp it onto a [`SamplingGrid`] with GDAL's
//!   warper (nearest, bilinear, cubic) through a lazy warped VRT, never a full-size copy.
//! - [`InputStack`]: several inputs' bands on one grid, read window by window with overlap
//!   margins; outside the raster is filled and, with nodata and GDAL mask/alpha bands,
//!   reported in a validity mask beside the values.
//! - [`GeoTiffWriter`]: a tiled, DEFLATE/ZSTD-compressed GeoTIFF with CRS, transform, band
//!   descriptions and nodata, written block by block as rows finish, moved into place (or
//!   turned into a COG) only when complete; [`write_quicklook`] makes an 8-bit PNG of it.
//!
//! Every call here blocks on GDAL: an async caller runs them on a dedicated thread, never on
//! the runtime's workers. GDAL's messages come back in typed errors naming the file; nothing
//! is printed to stderr.
//!
//! Not here: tile arithmetic (`ee-tiling`), tensors (`ee-tensor-proto`).

#![deny(missing_docs)]

mod error;
mod gdal_apps;
pub mod pixel;
pub mod points;
mod quicklook;
mod source;
mod stack;
pub mod vector;
mod writer;

pub use error::{Error, Result};
pub use gdal_apps::open_raster;
pub use quicklook::write_quicklook;
pub use source::{
    crs_short_name, same_crs, BandInfo, BandSelector, RasterSource, Resampling, SamplingGrid,
};
pub use stack::{InputStack, StackBand, WindowData};
pub use writer::{partial_path, Compression, FromF64, GeoTiffWriter, OutputBand, WriteOptions};
