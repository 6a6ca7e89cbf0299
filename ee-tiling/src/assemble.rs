//! Streaming assembly of tile answers into output rows.
//!
//! Answers are accumulated (value x weight, and the weight) into a rolling window of output
//! rows; when every tile that can touch a row has arrived, the row is finished and handed on
//! as part of a [`Block`], so memory is bounded by the rows in flight, not by the raster.
//! Accumulation runs in parallel over output rows with rayon (disjoint rows, no locks) when
//! the work is large enough to pay for it.
//!
//! `Crop` mode (Earth Engine's) keeps only each answer's core, so every output pixel gets
//! exactly one value with weight one; `Blend` keeps the scaled margins and weighs them with
//! raised-cosine profiles that sum to one. Both invariants are checked when a row finishes:
//! a pixel with no answer, or written twice in crop mode, is an error, never a silent value.

use std::borrow::Cow;
use std::collections::VecDeque;

use ndarray::{Array2, Array3};
use rayon::prelude::*;

use crate::answer::Pixel;
use crate::blend::axis_profile;
use crate::{Error, Margins, RasterSize, Result, Tile, TileGrid, Window};

/// One finished row's work: its index among the rows finished together, its values and
/// validity to fill, and the accumulated row.
type RowJob<'a, P> = (usize, ((&'a mut [P], &'a mut [bool]), &'a Row<P>));

/// Values below which accumulating or finishing rows runs on the calling thread: for a tile
/// or a block of a few MB, waking the pool costs more CPU than the copy it shares out (and a
/// small machine's other core has the reader, the network and the server to run).
const PARALLEL_MIN_VALUES: usize = 1 << 21;

/// How overlapping answers merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MergeMode {
    /// Margins thrown away; every output pixel from exactly one tile.
    #[default]
    Crop,
    /// Overlapping predictions averaged with raised-cosine weights.
    Blend,
}

/// One tile's answer, ready to assemble, in `f64` or `f32` (see [`Pixel`]).
#[derive(Clone, Debug)]
pub struct TileAnswer<P = f64> {
    /// Which tile.
    pub tile: Tile,
    /// Values `(rows, cols, planes)` covering the output core plus `margins`.
    pub values: Array3<P>,
    /// Margins (output pixels) present around the core in `values`.
    pub margins: Margins,
    /// Validity of the output core `(rows, cols)` (see [`crate::min_mask`]).
    pub valid: Array2<bool>,
}

/// Finished output rows: values and validity.
#[derive(Clone, Debug, PartialEq)]
pub struct Block<P = f64> {
    /// First output row.
    pub y0: usize,
    /// Values `(rows, cols, planes)`; masked pixels hold 0.
    pub values: Array3<P>,
    /// Validity `(rows, cols)`.
    pub valid: Array2<bool>,
}

impl<P> Block<P> {
    /// The window of the output this block covers.
    pub fn window(&self) -> Window {
        Window::new(0, self.y0 as i64, self.valid.ncols(), self.valid.nrows())
    }
}

/// One output row being accumulated. Crop keeps each pixel's value as it came (`core`) and
/// no weights: each pixel takes exactly one core's value, which `mask_writes` (core writes per
/// pixel) checks. Blend sums weighted values and weights in f64 (`sum`, `weight`).
#[derive(Clone)]
struct Row<P> {
    /// Crop only.
    core: Vec<P>,
    /// Blend only.
    sum: Vec<f64>,
    /// Blend only.
    weight: Vec<f64>,
    valid: Vec<bool>,
    mask_writes: Vec<u8>,
}

impl<P: Pixel> Row<P> {
    fn new(width: usize, planes: usize, mode: MergeMode) -> Self {
        let (core, sum, weight) = match mode {
            MergeMode::Crop => (vec![P::default(); width * planes], Vec::new(), Vec::new()),
            MergeMode::Blend => (Vec::new(), vec![0.0; width * planes], vec![0.0; width]),
        };
        Row {
            core,
            sum,
            weight,
            valid: vec![false; width],
            mask_writes: vec![0; width],
        }
    }

    /// Makes a row handed on earlier ready for new output rows: cheaper than a new one (no
    /// allocation, no fresh pages). Crop leaves `core` as it was: `finish_row` reads a pixel's
    /// value only after exactly one core wrote it, and that write overwrote it.
    fn reset(&mut self, mode: MergeMode) {
        if mode == MergeMode::Blend {
            self.sum.fill(0.0);
            self.weight.fill(0.0);
        }
        self.valid.fill(false);
        self.mask_writes.fill(0);
    }
}

/// One answer prepared for accumulation: its footprint in output pixels and weight profiles.
struct Placed<'a, P: Clone> {
    answer: &'a TileAnswer<P>,
    /// `answer.values` as one row-major slice.
    values: Cow<'a, [P]>,
    footprint: Window,
    wx: Vec<f64>,
    wy: Vec<f64>,
}

/// Assembles answers of a [`TileGrid`] into finished output rows of `P`.
pub struct Assembler<P = f64> {
    grid: TileGrid,
    mode: MergeMode,
    planes: usize,
    out: RasterSize,
    rows: VecDeque<Row<P>>,
    /// Rows already handed on, kept for reuse (at most [`Assembler::spare_limit`]).
    spare: Vec<Row<P>>,
    /// A block's values given back with [`Assembler::recycle`], for the next block.
    spare_block: Vec<P>,
    first_row: usize,
    seen: Vec<bool>,
    done_per_row: Vec<usize>,
    complete_rows: usize,
    max_block_rows: usize,
}

impl<P: Pixel> Assembler<P> {
    /// An assembler for `planes` output planes (array bands flattened). Blend mode needs
    /// overlap margins that scale to whole output pixels.
    pub fn new(grid: TileGrid, mode: MergeMode, planes: usize) -> Result<Self> {
        if mode == MergeMode::Blend && grid.output_margins().is_none() {
            let o = grid.overlap();
            return Err(Error::InvalidGeometry(format!(
                "blend needs overlap margins that scale to whole output pixels; overlap [{}, {}] with input tile [{}, {}] and output tile [{}, {}] does not",
                o.x, o.y, grid.tile_size().width, grid.tile_size().height, grid.output_tile_size().width, grid.output_tile_size().height
            )));
        }
        Ok(Assembler {
            grid,
            mode,
            planes,
            out: grid.output_size(),
            rows: VecDeque::new(),
            spare: Vec::new(),
            spare_block: Vec::new(),
            first_row: 0,
            seen: vec![false; grid.len()],
            done_per_row: vec![0; grid.rows()],
            complete_rows: 0,
            max_block_rows: usize::MAX,
        })
    }

    /// Hands finished rows out in blocks of at most `rows` rows (call
    /// [`Assembler::take_finished`] until it gives `None`), so a wide raster's finished tile
    /// row is not converted into one large block at once. Default: no limit.
    pub fn with_max_block_rows(mut self, rows: usize) -> Self {
        self.max_block_rows = rows.max(1);
        self
    }

    /// The merge mode.
    pub fn mode(&self) -> MergeMode {
        self.mode
    }

    /// Output rows currently held in memory.
    pub fn rows_in_flight(&self) -> usize {
        self.rows.len()
    }

    fn place<'a>(&self, a: &'a TileAnswer<P>) -> Result<Placed<'a, P>> {
        let t = a.tile;
        if self.grid.tile_number(t.number) != Some(t) {
            return Err(Error::Assembly(format!(
                "tile {} is not part of this grid",
                t.index
            )));
        }
        if self.seen[t.number] {
            return Err(Error::Assembly(format!(
                "tile {} was answered twice",
                t.index
            )));
        }
        let m = if self.mode == MergeMode::Crop {
            Margins::default()
        } else {
            a.margins
        };
        let (h, w, planes) = a.values.dim();
        let o = t.output;
        let expect = (
            o.height + a.margins.top + a.margins.bottom,
            o.width + a.margins.left + a.margins.right,
        );
        if (h, w) != expect || planes != self.planes || a.valid.dim() != (o.height, o.width) {
            return Err(Error::Assembly(format!(
                "tile {}: values {:?} / mask {:?} do not match core {}x{} with margins {:?} and {} planes",
                t.index, a.values.dim(), a.valid.dim(), o.height, o.width, a.margins, self.planes
            )));
        }
        let footprint = o.expand(m.left, m.top, m.right, m.bottom);
        let (col, row) = (t.index.col, t.index.row);
        let (wx, wy) = match self.mode {
            MergeMode::Crop => (vec![1.0; o.width], vec![1.0; o.height]),
            MergeMode::Blend => (
                axis_profile(
                    o.width,
                    m.left,
                    m.right,
                    col > 0,
                    col + 1 < self.grid.cols(),
                ),
                axis_profile(
                    o.height,
                    m.top,
                    m.bottom,
                    row > 0,
                    row + 1 < self.grid.rows(),
                ),
            ),
        };
        let values = match a.values.as_slice() {
            Some(v) => Cow::Borrowed(v),
            None => Cow::Owned(a.values.iter().copied().collect()),
        };
        Ok(Placed {
            answer: a,
            values,
            footprint,
            wx,
            wy,
        })
    }

    /// Accumulates a batch of answers (any tiles, any order), in parallel over output rows.
    pub fn add(&mut self, answers: &[TileAnswer<P>]) -> Result<()> {
        let placed = answers
            .iter()
            .map(|a| self.place(a))
            .collect::<Result<Vec<_>>>()?;
        let out_window = self.out.window();
        let mut bottom = self.first_row + self.rows.len();
        for p in &placed {
            if let Some(f) = p.footprint.intersect(out_window) {
                if (f.y as usize) < self.first_row {
                    return Err(Error::Assembly(format!(
                        "tile {} reaches output row {} which was already finished",
                        p.answer.tile.index, f.y
                    )));
                }
                bottom = bottom.max(f.bottom() as usize);
            }
        }
        while self.first_row + self.rows.len() < bottom {
            let row = self.new_row();
            self.rows.push_back(row);
        }
        let (width, planes) = (self.out.width, self.planes);
        let first = self.first_row;
        let mode = self.mode;
        let work: usize = placed.iter().map(|p| p.values.len()).sum();
        let rows = self.rows.make_contiguous();
        let accumulate = |(i, row): (usize, &mut Row<P>)| {
            accumulate_row(row, (first + i) as i64, &placed, width, planes, mode)
        };
        if work >= PARALLEL_MIN_VALUES {
            rows.par_iter_mut().enumerate().for_each(accumulate);
        } else {
            rows.iter_mut().enumerate().for_each(accumulate);
        }
        for p in &placed {
            let t = p.answer.tile;
            self.seen[t.number] = true;
            self.done_per_row[t.index.row] += 1;
        }
        Ok(())
    }

    /// A row for the next output row: a spare one reset, else a new one.
    fn new_row(&mut self) -> Row<P> {
        match self.spare.pop() {
            Some(mut row) => {
                row.reset(self.mode);
                row
            }
            None => Row::new(self.out.width, self.planes, self.mode),
        }
    }

    /// How many handed-on rows are kept for reuse: about the rows one tile row keeps open,
    /// which is what the next tile row will ask for.
    fn spare_limit(&self) -> usize {
        let margins = self
            .grid
            .output_margins()
            .map(|m| m.top + m.bottom)
            .unwrap_or(0);
        self.grid.output_tile_size().height + margins
    }

    /// Output rows below this one cannot be touched by tiles still to come.
    fn finished_bound(&mut self) -> usize {
        while self.complete_rows < self.grid.rows()
            && self.done_per_row[self.complete_rows] == self.grid.cols()
        {
            self.complete_rows += 1;
        }
        if self.complete_rows == self.grid.rows() {
            return self.out.height;
        }
        let top = self.complete_rows * self.grid.output_tile_size().height;
        let margin = match self.mode {
            MergeMode::Crop => 0,
            MergeMode::Blend => self.grid.output_margins().map(|m| m.top).unwrap_or(0),
        };
        top.saturating_sub(margin).min(self.out.height)
    }

    /// Hands on the rows every contributing tile has reached, if any.
    pub fn take_finished(&mut self) -> Result<Option<Block<P>>> {
        let bound = self
            .finished_bound()
            .min(self.first_row.saturating_add(self.max_block_rows));
        if bound <= self.first_row {
            return Ok(None);
        }
        let n = bound - self.first_row;
        let (width, planes) = (self.out.width, self.planes);
        while self.rows.len() < n {
            // Rows no answer reached yet (they will fail the coverage check below).
            let row = self.new_row();
            self.rows.push_back(row);
        }
        let rows: Vec<Row<P>> = self.rows.drain(..n).collect();
        // `finish_row` writes every value: a recycled buffer keeps what it held (no zeroing),
        // only its length is set.
        let mut values = std::mem::take(&mut self.spare_block);
        values.truncate(n * width * planes);
        values.resize(n * width * planes, P::default());
        let mut valid = vec![false; n * width];
        let (first, mode) = (self.first_row, self.mode);
        let finish = |(i, ((out, ok), row)): RowJob<'_, P>| {
            finish_row(row, out, ok, planes, mode, first + i)
        };
        if values.len() >= PARALLEL_MIN_VALUES {
            values
                .par_chunks_mut(width * planes)
                .zip(valid.par_chunks_mut(width))
                .zip(rows.par_iter())
                .enumerate()
                .try_for_each(finish)?;
        } else {
            values
                .chunks_mut(width * planes)
                .zip(valid.chunks_mut(width))
                .zip(rows.iter())
                .enumerate()
                .try_for_each(finish)?;
        }
        let keep = self.spare_limit().saturating_sub(self.spare.len());
        self.spare.extend(rows.into_iter().take(keep));
        let values = Array3::from_shape_vec((n, width, planes), values).expect("sized above");
        let valid = Array2::from_shape_vec((n, width), valid).expect("sized above");
        let block = Block {
            y0: self.first_row,
            values,
            valid,
        };
        self.first_row = bound;
        Ok(Some(block))
    }

    /// Gives a handed-on block's memory back for the next block (saves allocating and
    /// faulting in fresh pages for every block).
    pub fn recycle(&mut self, block: Block<P>) {
        let (values, _) = block.values.into_raw_vec_and_offset();
        if values.capacity() > self.spare_block.capacity() {
            self.spare_block = values;
        }
    }

    /// Checks that every tile was answered and every row handed on.
    pub fn finish(mut self) -> Result<()> {
        if let Some(missing) = self.seen.iter().position(|s| !s) {
            let t = self
                .grid
                .tile_number(missing)
                .map(|t| t.index.to_string())
                .unwrap_or_default();
            return Err(Error::Assembly(format!("tile {t} was never answered")));
        }
        if self.take_finished()?.is_some() || self.first_row != self.out.height {
            return Err(Error::Assembly("rows were left unhanded at the end".into()));
        }
        Ok(())
    }
}

/// Adds every placed answer that reaches output row `y` into `row`.
fn accumulate_row<P: Pixel>(
    row: &mut Row<P>,
    y: i64,
    placed: &[Placed<'_, P>],
    width: usize,
    planes: usize,
    mode: MergeMode,
) {
    for p in placed {
        let f = p.footprint;
        if y < f.y || y >= f.bottom() {
            continue;
        }
        let ly = (y - f.y) as usize;
        let wy = p.wy[ly];
        let m = if mode == MergeMode::Crop {
            Margins::default()
        } else {
            p.answer.margins
        };
        // `values` covers the core plus the answer's own margins; the footprint may use fewer.
        let vw = p.answer.values.dim().1;
        let vy = ly + (p.answer.margins.top - m.top);
        let vx0 = p.answer.margins.left - m.left;
        let (x_start, x_end) = (f.x.max(0), f.right().min(width as i64));
        if x_end > x_start {
            let lx0 = (x_start - f.x) as usize;
            let n = (x_end - x_start) as usize;
            let src0 = (vy * vw + vx0 + lx0) * planes;
            let src = &p.values[src0..src0 + n * planes];
            let xs = x_start as usize;
            if mode == MergeMode::Crop {
                // The footprint is the core: one write per pixel, counted below.
                row.core[xs * planes..(xs + n) * planes].copy_from_slice(src);
            } else {
                let dst = &mut row.sum[xs * planes..(xs + n) * planes];
                let weights = &mut row.weight[xs..xs + n];
                for (((d, s), acc), wx) in dst
                    .chunks_exact_mut(planes)
                    .zip(src.chunks_exact(planes))
                    .zip(weights)
                    .zip(&p.wx[lx0..lx0 + n])
                {
                    let w = wx * wy;
                    for (dv, sv) in d.iter_mut().zip(s) {
                        *dv += w * sv.to_f64();
                    }
                    *acc += w;
                }
            }
        }
        let core = p.answer.tile.output;
        if y >= core.y && y < core.bottom() {
            let cy = (y - core.y) as usize;
            let (x0, x1) = (core.x.max(0), core.right().min(width as i64));
            if x1 > x0 {
                let (x0, n) = (x0 as usize, (x1 - x0) as usize);
                let from = (x0 as i64 - core.x) as usize;
                let valid = p.answer.valid.row(cy);
                let dst = &mut row.valid[x0..x0 + n];
                match valid.as_slice() {
                    Some(src) => dst.copy_from_slice(&src[from..from + n]),
                    None => {
                        for (d, s) in dst.iter_mut().zip(valid.iter().skip(from)) {
                            *d = *s;
                        }
                    }
                }
                for w in &mut row.mask_writes[x0..x0 + n] {
                    *w = w.saturating_add(1);
                }
            }
        }
    }
}

/// Turns one accumulated row into final values (masked pixels 0), checking its invariants.
fn finish_row<P: Pixel>(
    row: &Row<P>,
    out: &mut [P],
    ok: &mut [bool],
    planes: usize,
    mode: MergeMode,
    y: usize,
) -> Result<()> {
    let refuse = |x: usize, w: f64, writes: u8| {
        Error::Assembly(format!(
            "output pixel (col {x}, row {y}) has weight {w} from {writes} core writes (expected weight 1 from exactly one core)"
        ))
    };
    if mode == MergeMode::Crop {
        // Every pixel written by exactly one core (checked at once for the row): the row's
        // values as they are, masked pixels 0.
        if let Some((x, &writes)) = row.mask_writes.iter().enumerate().find(|(_, &w)| w != 1) {
            return Err(refuse(x, f64::from(writes), writes));
        }
        out.copy_from_slice(&row.core);
        ok.copy_from_slice(&row.valid);
        if !row.valid.iter().all(|&v| v) {
            for (dst, _) in out
                .chunks_exact_mut(planes)
                .zip(&row.valid)
                .filter(|(_, v)| !**v)
            {
                dst.fill(P::default());
            }
        }
        return Ok(());
    }
    for (x, (writes, (dst, valid))) in row
        .mask_writes
        .iter()
        .zip(out.chunks_exact_mut(planes).zip(ok.iter_mut()))
        .enumerate()
    {
        let w = row.weight[x];
        let good = (w - 1.0).abs() < 1e-9; // false for NaN too
        if !good || *writes != 1 {
            return Err(refuse(x, w, *writes));
        }
        *valid = row.valid[x];
        if *valid {
            for (d, s) in dst.iter_mut().zip(&row.sum[x * planes..(x + 1) * planes]) {
                *d = P::from_f64(s / w);
            }
        } else {
            dst.fill(P::default());
        }
    }
    Ok(())
}
