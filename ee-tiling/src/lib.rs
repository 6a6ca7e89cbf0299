//! Tile geometry for Earth Engine–style prediction: affine transforms, pixel windows, tile
//! grids with overlap, input/output scale, and rayon-parallel assembly of predicted tiles
//! into seamless output (crop or blend), with Earth Engine's minimum-mask rule.
//!
//! Pure arithmetic and in-memory assembly: no I/O (rasters are read and written by
//! `ee-raster-io`), no network.
