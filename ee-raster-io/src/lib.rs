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
//! ```
//! use ee_raster_io::{InputStack, Resampling};
//! use ee_tiling::Window;
//!
//! // The demo scene: 512 x 512 pixels of four bands (B2, B3, B4, B8).
//! let stack = InputStack::open(&["../ee-model/demo/scene.tif".into()], &[], None, Resampling::Nearest)?;
//! assert_eq!(stack.bands().len(), 4);
//! // A 128 x 128 tile with 8 pixels of overlap on each side, at the raster's corner.
//! let tile = stack.read_window::<f32>(Window::new(-8, -8, 144, 144), 0.0)?;
//! assert_eq!(tile.values.dim(), (4, 144, 144)); // (band, row, col)
//! assert!(!tile.valid[[0, 0]] && tile.valid[[8, 8]]); // outside the raster / inside
//! # Ok::<(), ee_raster_io::Error>(())
//! ```
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
pub use stack::{InputStack, InterleavedWindow, StackBand, WindowData};
pub use writer::{
    partial_path, Compression, FromF64, GeoTiffWriter, OutputBand, WriteOptions, WriteStats,
};

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
