//! Planning a job before anything is read or sent: the inputs opened and resolved, the region
//! checked, the tile grid, what one tile needs in memory, and the zoom-out guard's figures
//! (tiles, requests, bytes), all in memory independent of the tile count.

use std::path::PathBuf;

use ee_predict_client::InputDescription;
use ee_raster_io::{InputStack, RasterSource, Resampling};
use ee_tensor_proto::{DataType, Instance, Tensor};
use ee_tiling::{RasterSize, Shard, TileGrid, Window};

use super::inputs::{resolve_inputs, InputPlan};
use super::{Runner, WINDOW_PIXEL_BYTES};
use crate::spec::{ModelSpec, MAX_TILE_BYTES};
use crate::{Error, Result};

/// What a job will send, reported before sending (and used by the zoom-out guard).
#[derive(Clone, Debug, PartialEq)]
pub struct JobPlan {
    /// Tiles in the grid.
    pub tiles: usize,
    /// Tiles still to predict (not in the journal).
    pub to_send: usize,
    /// Requests (model runs, for a local model) needed.
    pub requests: usize,
    /// Approximate request bytes (0 for a local model): exact for the binary payload formats,
    /// a lower bound for the text ones, whose size depends on the values (so is `requests`).
    pub bytes: u64,
    /// True when "requests" are local model runs.
    pub local: bool,
    /// Output size.
    pub output_size: RasterSize,
}

impl std::fmt::Display for JobPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tiles ({} to predict) in {} ",
            self.tiles, self.to_send, self.requests
        )?;
        if self.local {
            write!(f, "model runs")?;
        } else {
            write!(f, "requests, about {:.1} MB", self.bytes as f64 / 1e6)?;
        }
        write!(
            f,
            ", for a {} x {} output",
            self.output_size.width, self.output_size.height
        )
    }
}

/// The inputs opened and the job's grid.
pub(crate) struct Opened {
    pub stack: InputStack,
    pub plans: Vec<InputPlan>,
    pub grid: TileGrid,
}

/// Opens the inputs, resolves the model's inputs against their bands, checks the region and
/// builds the grid (of the shard, when one is asked for). Runs GDAL: call it on a blocking
/// thread.
pub(crate) fn open(
    spec: &ModelSpec,
    paths: &[PathBuf],
    local_inputs: &[(String, DataType)],
    resampling: Resampling,
    region: Option<Window>,
    shard: Option<Shard>,
) -> Result<Opened> {
    let sources = paths
        .iter()
        .map(RasterSource::open)
        .collect::<ee_raster_io::Result<Vec<_>>>()?;
    let (selection, plans) = resolve_inputs(spec, &sources, local_inputs)?;
    let sampling = match (&spec.proj, spec.fix_input_proj) {
        (Some(p), true) => Some(sources[0].grid().covering(
            &p.crs,
            p.scale,
            p.origin.unwrap_or([0.0, 0.0]),
        )?),
        _ => None,
    };
    drop(sources);
    let stack = InputStack::open(paths, &selection, sampling.as_ref(), resampling)?;
    let whole = stack.grid().size;
    let region = match region {
        None => whole.window(),
        Some(r) => checked_region(r, whole)?,
    };
    let grid_of = |region| {
        TileGrid::new(
            region,
            spec.input_tile_size,
            spec.input_overlap_size,
            spec.output_tile_size,
        )
    };
    let mut grid = grid_of(region)?;
    if let Some(shard) = shard {
        grid = grid_of(shard.region(&grid)?)?;
    }
    Ok(Opened { stack, plans, grid })
}

/// `region` when it lies inside a raster of `size` and is not empty, in arithmetic that
/// cannot overflow (a width of `u64::MAX` does not wrap around to fit).
pub(crate) fn checked_region(region: Window, size: RasterSize) -> Result<Window> {
    let inside = |start: i64, length: usize, limit: usize| {
        start >= 0 && length > 0 && start as u128 + length as u128 <= limit as u128
    };
    if inside(region.x, region.width, size.width) && inside(region.y, region.height, size.height) {
        Ok(region)
    } else {
        Err(Error::Options(format!(
            "region {},{},{},{} (x, y, width, height) is not inside the {} x {} input",
            region.x, region.y, region.width, region.height, size.width, size.height
        )))
    }
}

/// The bytes one tile needs while it is read and sent: its window as read (every band of the
/// stack as f64) plus each input's tensor. An error when that passes the spec's
/// [`MAX_TILE_BYTES`], naming the tile size and the bytes: the spec checked the bands it
/// names, this checks the bands the rasters actually have, before anything is read.
pub(crate) fn tile_bytes(grid: &TileGrid, stack_bands: usize, plans: &[InputPlan]) -> Result<u64> {
    let size = grid.tile_size();
    let (w, h) = window_size(grid);
    let pixels = w as u128 * h as u128;
    let window = pixels * stack_bands as u128 * WINDOW_PIXEL_BYTES as u128;
    let tensors: u128 = plans
        .iter()
        .map(|p| pixels * p.positions.len() as u128 * p.dtype.size().unwrap_or(8) as u128)
        .sum();
    let bytes = window + tensors;
    if bytes > MAX_TILE_BYTES as u128 {
        return Err(Error::Spec(format!(
            "one tile of {w} x {h} pixels (inputTileSize {} x {} plus inputOverlapSize) with {stack_bands} bands needs {bytes} bytes to read and send, more than the {MAX_TILE_BYTES} allowed; use a smaller inputTileSize",
            size.width, size.height
        )));
    }
    Ok(bytes as u64)
}

/// A tile's instance as it will be sent, built without reading anything: each input's tensor
/// of the tile's window shape and type, holding zeros. The size of a request built from it is
/// exact for the binary payload formats and a lower bound for the text ones (whose numbers
/// take more characters than a zero); the dispatcher splits a batch that turns out larger
/// than the payload budget.
pub(crate) fn sample_instance(grid: &TileGrid, plans: &[InputPlan]) -> Instance {
    let mut instance = Instance::new();
    for d in input_descriptions(grid, plans) {
        instance.push(d.name, Tensor::zeros(d.dtype, &d.shape));
    }
    instance
}

/// The size `(width, height)` of every tile's window as read: its core plus the overlap
/// margins (the spec bounds both, so the sum cannot overflow).
fn window_size(grid: &TileGrid) -> (usize, usize) {
    let (size, m) = (grid.tile_size(), grid.overlap().margins());
    (
        size.width + m.left + m.right,
        size.height + m.top + m.bottom,
    )
}

/// What each model input of a tile will be sent as: its name, type and shape per instance.
pub(crate) fn input_descriptions(grid: &TileGrid, plans: &[InputPlan]) -> Vec<InputDescription> {
    let (w, h) = window_size(grid);
    plans
        .iter()
        .map(|p| InputDescription {
            name: p.name.clone(),
            dtype: p.dtype,
            shape: vec![h, w, p.positions.len()],
        })
        .collect()
}

/// Tiles per request (per model run, for a local model) and the bytes of one tile's request.
pub(crate) fn per_request(
    runner: &Runner,
    grid: &TileGrid,
    plans: &[InputPlan],
) -> Result<(usize, u64)> {
    match runner {
        Runner::Local { batch, .. } => Ok((*batch, 0)),
        Runner::Remote(client) => {
            // One tile alone (an error says so if it cannot fit), then as many tiles of its
            // size as the client's planner would put in one request, at most 64.
            let sample = sample_instance(grid, plans);
            let one = std::slice::from_ref(&sample);
            let first = grid.tile_number(0).map(|t| t.index.to_string());
            client.plan(one, &[first.unwrap_or_default()])?;
            let alone = client.encoded_size(one)?;
            let config = client.config();
            let scaled = |bytes: usize| (bytes as f64 * config.output_multiplier).ceil() as usize;
            let per_request = (2..=64usize)
                .take_while(|&k| scaled(alone.saturating_mul(k)) <= config.max_payload_bytes)
                .last()
                .unwrap_or(1);
            Ok((per_request, alone as u64))
        }
    }
}

/// The zoom-out guard: the plan of a job with `to_send` tiles left, refused when it needs
/// more than `max_requests` requests.
pub(crate) fn guard(
    grid: &TileGrid,
    to_send: usize,
    (per_request, tile_bytes): (usize, u64),
    local: bool,
    max_requests: usize,
) -> Result<JobPlan> {
    let plan = JobPlan {
        tiles: grid.len(),
        to_send,
        requests: to_send.div_ceil(per_request.max(1)),
        bytes: tile_bytes.saturating_mul(to_send as u64),
        local,
        output_size: grid.output_size(),
    };
    if plan.requests > max_requests {
        return Err(Error::TooLarge(format!(
            "refusing to send {} requests ({plan}); the limit is {max_requests} (raise --max-requests, use a smaller region or larger tiles)",
            plan.requests
        )));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_that_would_wrap_around_is_not_inside() {
        let size = RasterSize {
            width: 100,
            height: 50,
        };
        let ok = Window::new(10, 5, 90, 45);
        assert_eq!(checked_region(ok, size).unwrap(), ok);
        for bad in [
            Window::new(0, 0, usize::MAX, 1),
            Window::new(0, 0, 1, usize::MAX),
            Window::new(i64::MAX, 0, 1, 1),
            Window::new(-1, 0, 10, 10),
            Window::new(0, 0, 101, 1),
            Window::new(0, 0, 0, 1),
            Window::new(99, 49, 2, 1),
        ] {
            let err = checked_region(bad, size).unwrap_err().to_string();
            assert!(
                err.starts_with("options: region") && err.contains("100 x 50"),
                "{bad:?}: {err}"
            );
        }
    }
}
