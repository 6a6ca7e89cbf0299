//! Pixel rectangles: `RasterSize` (a raster's extent) and `Window` (a rectangle that may run
//! past a raster's edges, as overlap margins do).

/// Width and height of a raster, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RasterSize {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

impl RasterSize {
    /// A size of `width` x `height`.
    pub fn new(width: usize, height: usize) -> Self {
        RasterSize { width, height }
    }

    /// The whole raster as a window.
    pub fn window(self) -> Window {
        Window::new(0, 0, self.width, self.height)
    }

    /// Pixel count.
    pub fn area(self) -> usize {
        self.width * self.height
    }
}

/// A rectangle of pixels; `x`/`y` may be negative and the far edges may lie past a raster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    /// Left column.
    pub x: i64,
    /// Top row.
    pub y: i64,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

impl Window {
    /// A window at `(x, y)` of `width` x `height`.
    pub fn new(x: i64, y: i64, width: usize, height: usize) -> Self {
        Window {
            x,
            y,
            width,
            height,
        }
    }

    /// One past the right column.
    pub fn right(self) -> i64 {
        self.x + self.width as i64
    }

    /// One past the bottom row.
    pub fn bottom(self) -> i64 {
        self.y + self.height as i64
    }

    /// Pixel count.
    pub fn area(self) -> usize {
        self.width * self.height
    }

    /// The overlap of two windows, if any.
    pub fn intersect(self, other: Window) -> Option<Window> {
        let x = self.x.max(other.x);
        let y = self.y.max(other.y);
        let r = self.right().min(other.right());
        let b = self.bottom().min(other.bottom());
        (r > x && b > y).then(|| Window::new(x, y, (r - x) as usize, (b - y) as usize))
    }

    /// This window grown by the given margins on each side.
    pub fn expand(self, left: usize, top: usize, right: usize, bottom: usize) -> Window {
        Window::new(
            self.x - left as i64,
            self.y - top as i64,
            self.width + left + right,
            self.height + top + bottom,
        )
    }

    /// This window moved by `(dx, dy)`.
    pub fn shift(self, dx: i64, dy: i64) -> Window {
        Window::new(self.x + dx, self.y + dy, self.width, self.height)
    }

    /// True when `other` lies entirely inside this window.
    pub fn contains(self, other: Window) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.right() <= self.right()
            && other.bottom() <= self.bottom()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersect_and_expand() {
        let a = Window::new(-2, -2, 10, 10);
        let r = RasterSize::new(5, 20).window();
        assert_eq!(a.intersect(r), Some(Window::new(0, 0, 5, 8)));
        assert_eq!(Window::new(5, 0, 3, 3).intersect(r), None);
        assert_eq!(
            Window::new(0, 0, 4, 4).expand(1, 2, 3, 4),
            Window::new(-1, -2, 8, 10)
        );
        assert!(a.contains(Window::new(0, 0, 8, 8)));
    }
}
