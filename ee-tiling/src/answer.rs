//! Checking and cropping a model's answer for one tile and one output band.
//!
//! An answer must have rank `2 + dimensions` (a scalar band may also come back `(h, w, 1)`),
//! and a spatial size that is either the output core or the core plus the overlap margins
//! scaled to output pixels. Any other shape is an error naming the tile, the band and both
//! shapes.

use half::f16;
use ndarray::{s, Array3, ArrayViewD, Ix3};

use crate::{Error, Margins, Result, Tile, TileGrid};

/// Converts an answer element to the f64 the assembler accumulates in.
pub trait Sample: Copy {
    /// The value as f64.
    fn to_f64(self) -> f64;
}

macro_rules! sample_as {
    ($($t:ty),*) => {$(
        impl Sample for $t {
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
sample_as!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);

impl Sample for f16 {
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
}

impl Sample for bool {
    fn to_f64(self) -> f64 {
        if self {
            1.0
        } else {
            0.0
        }
    }
}

/// The element type tiles are cropped, journaled and assembled in: `f64` (any output), or
/// `f32` when every output band is float32, which halves the memory every answer passes
/// through. Each answer value becomes `P::from_f64(value.to_f64())`, so an `f32` pipeline
/// rounds each value once, exactly where an `f64` one converting at the end would.
pub trait Pixel: Sample + Default + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// `v` in this type (`as` conversion: nearest, NaN kept).
    fn from_f64(v: f64) -> Self;
}

impl Pixel for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Pixel for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// Per-pixel rank of an output band: 0 scalar, 1 vector, 2 matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BandDims {
    /// One value per pixel.
    Scalar,
    /// A vector per pixel: `(h, w, k)`.
    Vector,
    /// A matrix per pixel: `(h, w, a, b)`, flattened to `a * b` planes.
    Matrix,
}

impl BandDims {
    /// From Earth Engine's `dimensions` number.
    pub fn from_dimensions(d: u32) -> Result<Self> {
        match d {
            0 => Ok(BandDims::Scalar),
            1 => Ok(BandDims::Vector),
            2 => Ok(BandDims::Matrix),
            other => Err(Error::InvalidGeometry(format!(
                "output band dimensions must be 0, 1 or 2, not {other}"
            ))),
        }
    }
}

/// An answer reduced to `(h, w, planes)` of `P`, and the margins it still carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Cropped<P = f64> {
    /// Values, `(rows, cols, planes)`.
    pub values: Array3<P>,
    /// Margins (output pixels) around the core still present in `values`.
    pub margins: Margins,
}

/// Checks `answer` for `tile`/`band` and crops it: to the core when `keep_margins` is false
/// (or when the answer has no margins), else to core plus scaled margins.
pub fn crop_answer<T: Sample, P: Pixel>(
    answer: ArrayViewD<'_, T>,
    grid: &TileGrid,
    tile: &Tile,
    band: &str,
    dims: BandDims,
    keep_margins: bool,
) -> Result<Cropped<P>> {
    let shape = answer.shape().to_vec();
    let out = grid.output_tile_size();
    let scaled = grid.output_margins();
    let buffered = scaled.map(|m| (out.height + m.top + m.bottom, out.width + m.left + m.right));
    let expected = || {
        let rank = match dims {
            BandDims::Scalar => "(h, w) or (h, w, 1)",
            BandDims::Vector => "(h, w, depth)",
            BandDims::Matrix => "(h, w, a, b)",
        };
        match buffered {
            Some((bh, bw)) if (bh, bw) != (out.height, out.width) => format!(
                "{rank} with (h, w) = ({}, {}) (core) or ({bh}, {bw}) (core + overlap)",
                out.height, out.width
            ),
            _ => format!("{rank} with (h, w) = ({}, {})", out.height, out.width),
        }
    };
    let fail = || Error::AnswerShape {
        tile: tile.index.to_string(),
        band: band.to_string(),
        found: shape.clone(),
        expected: expected(),
    };
    let rank_ok = match dims {
        BandDims::Scalar => shape.len() == 2 || (shape.len() == 3 && shape[2] == 1),
        BandDims::Vector => shape.len() == 3,
        BandDims::Matrix => shape.len() == 4,
    };
    if !rank_ok {
        return Err(fail());
    }
    let (h, w) = (shape[0], shape[1]);
    let planes: usize = shape[2..]
        .iter()
        .product::<usize>()
        .max(if dims == BandDims::Scalar { 1 } else { 0 });
    let margins = if (h, w) == (out.height, out.width) {
        Margins::default()
    } else if Some((h, w)) == buffered {
        scaled.unwrap_or_default()
    } else {
        return Err(fail());
    };
    let flat = answer
        .to_shape((h, w, planes))
        .map_err(|_| fail())?
        .into_dimensionality::<Ix3>()
        .map_err(|_| fail())?;
    let (keep, cut) = if keep_margins {
        (margins, Margins::default())
    } else {
        (Margins::default(), margins)
    };
    let (rows, cols) = (h - cut.top - cut.bottom, w - cut.left - cut.right);
    // Answers arrive in standard layout: convert the kept part of each row as one slice, so
    // the result is in standard layout too (what the journal and the assembler read fastest).
    let values = match flat.as_slice() {
        Some(all) => {
            let mut out = Vec::with_capacity(rows * cols * planes);
            for y in cut.top..h - cut.bottom {
                let start = (y * w + cut.left) * planes;
                let row = &all[start..start + cols * planes];
                out.extend(row.iter().map(|&v| P::from_f64(v.to_f64())));
            }
            Array3::from_shape_vec((rows, cols, planes), out).map_err(|_| fail())?
        }
        None => flat
            .slice(s![cut.top..h - cut.bottom, cut.left..w - cut.right, ..])
            .mapv(|v| P::from_f64(v.to_f64())),
    };
    Ok(Cropped {
        values,
        margins: keep,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Overlap, RasterSize, TileSize};
    use ndarray::ArrayD;

    fn grid() -> TileGrid {
        TileGrid::new(
            RasterSize::new(20, 20).window(),
            TileSize::new(8, 8).unwrap(),
            Overlap::new(4, 4),
            TileSize::new(8, 8).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn buffered_answers_are_cropped_to_the_core() {
        let g = grid();
        let t = g.tile_number(0).unwrap();
        let a = ArrayD::from_shape_fn(vec![12, 12, 1], |i| (i[0] * 100 + i[1]) as f32);
        let c: Cropped = crop_answer(a.view(), &g, &t, "out", BandDims::Scalar, false).unwrap();
        assert_eq!(c.values.shape(), &[8, 8, 1]);
        assert_eq!(c.values[[0, 0, 0]], 202.0);
        let kept: Cropped<f32> =
            crop_answer(a.view(), &g, &t, "out", BandDims::Scalar, true).unwrap();
        assert_eq!(kept.values.shape(), &[12, 12, 1]);
        assert_eq!(
            kept.margins,
            Margins {
                left: 2,
                right: 2,
                top: 2,
                bottom: 2
            }
        );
    }

    #[test]
    fn wrong_shapes_name_tile_band_and_shapes() {
        let g = grid();
        let t = g.tile_number(3).unwrap();
        let a = ArrayD::<f32>::zeros(vec![10, 12]);
        let err =
            crop_answer::<_, f64>(a.view(), &g, &t, "probs", BandDims::Scalar, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tile (col 0, row 1) band \"probs\": answer has shape [10, 12], expected (h, w) or (h, w, 1) with (h, w) = (8, 8) (core) or (12, 12) (core + overlap)"
        );
        let v = ArrayD::<u8>::zeros(vec![8, 8, 3, 2]);
        assert_eq!(
            crop_answer::<_, f64>(v.view(), &g, &t, "m", BandDims::Matrix, false)
                .unwrap()
                .values
                .shape(),
            &[8, 8, 6]
        );
        assert!(crop_answer::<_, f32>(v.view(), &g, &t, "v", BandDims::Vector, false).is_err());
    }
}
