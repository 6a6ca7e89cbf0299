//! `GeoTransform`: GDAL's affine map from pixel (column, row) to ground coordinates.

/// `x = x0 + col * dx + row * rx`, `y = y0 + col * ry + row * dy` (GDAL's six coefficients in
/// GDAL's order: `[x0, dx, rx, y0, ry, dy]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeoTransform {
    /// Ground x of the top-left corner of pixel (0, 0).
    pub x0: f64,
    /// Pixel width (x change per column).
    pub dx: f64,
    /// Row rotation (x change per row).
    pub rx: f64,
    /// Ground y of the top-left corner of pixel (0, 0).
    pub y0: f64,
    /// Column rotation (y change per column).
    pub ry: f64,
    /// Pixel height (y change per row; negative for north-up).
    pub dy: f64,
}

impl GeoTransform {
    /// From GDAL's coefficient order.
    pub fn from_gdal(c: [f64; 6]) -> Self {
        GeoTransform {
            x0: c[0],
            dx: c[1],
            rx: c[2],
            y0: c[3],
            ry: c[4],
            dy: c[5],
        }
    }

    /// In GDAL's coefficient order.
    pub fn to_gdal(self) -> [f64; 6] {
        [self.x0, self.dx, self.rx, self.y0, self.ry, self.dy]
    }

    /// A north-up transform: origin and pixel size.
    pub fn north_up(x0: f64, y0: f64, pixel_width: f64, pixel_height: f64) -> Self {
        GeoTransform {
            x0,
            dx: pixel_width,
            rx: 0.0,
            y0,
            ry: 0.0,
            dy: -pixel_height.abs(),
        }
    }

    /// Ground coordinates of a (fractional) pixel position; `(c + 0.5, r + 0.5)` is a centre.
    pub fn apply(self, col: f64, row: f64) -> (f64, f64) {
        (
            self.x0 + col * self.dx + row * self.rx,
            self.y0 + col * self.ry + row * self.dy,
        )
    }

    /// The same grid with its origin moved to pixel `(col, row)`.
    pub fn offset(self, col: i64, row: i64) -> Self {
        let (x0, y0) = self.apply(col as f64, row as f64);
        GeoTransform { x0, y0, ..self }
    }

    /// The grid with pixels `sx` by `sy` times larger (same origin).
    pub fn scaled(self, sx: f64, sy: f64) -> Self {
        GeoTransform {
            dx: self.dx * sx,
            ry: self.ry * sx,
            rx: self.rx * sy,
            dy: self.dy * sy,
            ..self
        }
    }
}
