//! Raster input and output through GDAL: open anything GDAL reads, read windows with overlap
//! margins and masks, warp onto a sampling grid, and write tiled, compressed, georeferenced
//! GeoTIFFs (or COGs) window by window.
//!
//! GDAL calls are blocking; callers on an async runtime run them on a dedicated thread.
