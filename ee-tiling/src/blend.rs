//! Raised-cosine blending weights. Where two neighbouring tiles' footprints overlap (a zone of
//! `left + right` margin pixels around their shared core edge), one tile's weight rises as
//! `0.5 - 0.5 cos(pi (t + 0.5) / L)` while the other's falls as its complement, so the two
//! always sum to one; a side with no neighbour (the raster's edge) is not faded. In 2-D the
//! weight is the product of the two axes' profiles, which sums to one as well.

use std::f64::consts::PI;

/// The weight profile of one tile along one axis, over its footprint
/// `[core_start - before, core_end + after)`.
///
/// `has_prev` / `has_next` say whether a neighbouring tile shares the zone at each end.
pub fn axis_profile(
    core: usize,
    before: usize,
    after: usize,
    has_prev: bool,
    has_next: bool,
) -> Vec<f64> {
    let len = before + core + after;
    let zone = before + after;
    (0..len)
        .map(|i| {
            if zone == 0 {
                1.0
            } else if has_prev && i < zone {
                0.5 - 0.5 * (PI * (i as f64 + 0.5) / zone as f64).cos()
            } else if has_next && i >= len - zone {
                let t = i - (len - zone);
                0.5 + 0.5 * (PI * (t as f64 + 0.5) / zone as f64).cos()
            } else {
                1.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_profiles_sum_to_one() {
        // Two tiles of core 10 with margins 2 before and 3 after: the zone is 5 wide.
        let a = axis_profile(10, 2, 3, false, true);
        let b = axis_profile(10, 2, 3, true, false);
        // a's footprint is [-2, 13), b's is [8, 23): they share [8, 13).
        for x in 8..13 {
            let sum = a[(x + 2) as usize] + b[(x - 8) as usize];
            assert!((sum - 1.0).abs() < 1e-12, "x={x} sum={sum}");
        }
        assert_eq!(a[0], 1.0, "the raster's edge is not faded");
        assert_eq!(*b.last().unwrap(), 1.0);
    }
}
