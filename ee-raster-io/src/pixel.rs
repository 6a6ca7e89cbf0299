//! Mapping between our `DataType` and GDAL's band types, and the common type a multi-band
//! GeoTIFF needs (GTiff stores one type for all bands).

use ee_tensor_proto::DataType;
use gdal::raster::GdalDataType;

use crate::{Error, Result};

/// The `DataType` of a GDAL band type.
pub fn from_gdal(t: GdalDataType) -> Result<DataType> {
    Ok(match t {
        GdalDataType::UInt8 => DataType::Uint8,
        GdalDataType::UInt16 => DataType::Uint16,
        GdalDataType::Int16 => DataType::Int16,
        GdalDataType::UInt32 => DataType::Uint32,
        GdalDataType::Int32 => DataType::Int32,
        GdalDataType::UInt64 => DataType::Uint64,
        GdalDataType::Int64 => DataType::Int64,
        GdalDataType::Float32 => DataType::Float32,
        GdalDataType::Float64 => DataType::Float64,
        other => return Err(Error::Unsupported(format!("GDAL band type {other:?} is not supported (complex and unknown types cannot be sent to a model)"))),
    })
}

/// The GDAL band type that stores `DataType` exactly (bool as byte, f16 and i8 widened).
pub fn to_gdal(t: DataType) -> Result<GdalDataType> {
    Ok(match t {
        DataType::Uint8 | DataType::Bool => GdalDataType::UInt8,
        DataType::Int8 | DataType::Int16 => GdalDataType::Int16,
        DataType::Uint16 => GdalDataType::UInt16,
        DataType::Int32 => GdalDataType::Int32,
        DataType::Uint32 => GdalDataType::UInt32,
        DataType::Int64 => GdalDataType::Int64,
        DataType::Uint64 => GdalDataType::UInt64,
        DataType::Float16 | DataType::Float32 => GdalDataType::Float32,
        DataType::Float64 => GdalDataType::Float64,
        DataType::String => {
            return Err(Error::Unsupported(
                "string outputs cannot be written to a raster".into(),
            ))
        }
    })
}

/// Rank of a GDAL type for promotion: (is float, byte size, is signed).
fn rank(t: GdalDataType) -> (bool, usize, bool) {
    match t {
        GdalDataType::UInt8 => (false, 1, false),
        GdalDataType::UInt16 => (false, 2, false),
        GdalDataType::Int16 => (false, 2, true),
        GdalDataType::UInt32 => (false, 4, false),
        GdalDataType::Int32 => (false, 4, true),
        GdalDataType::UInt64 => (false, 8, false),
        GdalDataType::Int64 => (false, 8, true),
        GdalDataType::Float32 => (true, 4, true),
        _ => (true, 8, true),
    }
}

/// The narrowest GDAL type that holds every value of all `types`.
pub fn common_type(types: &[DataType]) -> Result<GdalDataType> {
    let gdal: Vec<GdalDataType> = types.iter().map(|&t| to_gdal(t)).collect::<Result<_>>()?;
    let any_float = gdal.iter().any(|&t| rank(t).0);
    if any_float {
        let wide = gdal
            .iter()
            .any(|&t| t == GdalDataType::Float64 || (!rank(t).0 && rank(t).1 >= 4));
        return Ok(if wide {
            GdalDataType::Float64
        } else {
            GdalDataType::Float32
        });
    }
    let size = gdal.iter().map(|&t| rank(t).1).max().unwrap_or(1);
    let signed = gdal.iter().any(|&t| rank(t).2);
    // A signed type must be wider than any unsigned type it has to hold.
    let unsigned_size = gdal
        .iter()
        .filter(|&&t| !rank(t).2)
        .map(|&t| rank(t).1)
        .max()
        .unwrap_or(0);
    let need = if signed && unsigned_size >= size {
        size * 2
    } else {
        size
    };
    Ok(match (signed, need) {
        (false, 1) => GdalDataType::UInt8,
        (false, 2) => GdalDataType::UInt16,
        (false, 4) => GdalDataType::UInt32,
        (false, _) => GdalDataType::UInt64,
        (true, 1) | (true, 2) => GdalDataType::Int16,
        (true, 4) => GdalDataType::Int32,
        (true, 8) => GdalDataType::Int64,
        (true, _) => GdalDataType::Float64,
    })
}

/// The default nodata of a GDAL type: NaN for floats, the type's maximum for integers (for
/// 64-bit integers the 32-bit maximum, which a `f64` nodata holds exactly). A real value equal
/// to it reads back as nodata: give a band its own `nodata` where the maximum is a real value
/// (a class map's 255).
pub fn default_nodata(t: GdalDataType) -> f64 {
    match t {
        GdalDataType::UInt8 => u8::MAX as f64,
        GdalDataType::UInt16 => u16::MAX as f64,
        GdalDataType::Int16 => i16::MAX as f64,
        GdalDataType::UInt32 => u32::MAX as f64,
        GdalDataType::Int32 => i32::MAX as f64,
        GdalDataType::UInt64 => u32::MAX as f64,
        GdalDataType::Int64 => i32::MAX as f64,
        _ => f64::NAN,
    }
}

/// The values a band type holds: `min..=max`, whole numbers only for integer types, NaN only
/// for float types. What a nodata value must fit and what [`FromF64`] saturates to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValueRange {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Whole numbers only (integer types).
    pub integer: bool,
}

impl ValueRange {
    /// The range of `t` (bool as 0 and 1; 64-bit integers limited to the whole numbers a `f64`
    /// holds exactly, +-2^53, since GDAL's nodata is a `f64`; float16 +-65504).
    pub fn of(t: DataType) -> ValueRange {
        let int = |min: f64, max: f64| ValueRange {
            min,
            max,
            integer: true,
        };
        let float = |max: f64| ValueRange {
            min: -max,
            max,
            integer: false,
        };
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        match t {
            DataType::Bool => int(0.0, 1.0),
            DataType::Uint8 => int(0.0, u8::MAX as f64),
            DataType::Int8 => int(i8::MIN as f64, i8::MAX as f64),
            DataType::Uint16 => int(0.0, u16::MAX as f64),
            DataType::Int16 => int(i16::MIN as f64, i16::MAX as f64),
            DataType::Uint32 => int(0.0, u32::MAX as f64),
            DataType::Int32 => int(i32::MIN as f64, i32::MAX as f64),
            DataType::Uint64 => int(0.0, EXACT),
            DataType::Int64 => int(-EXACT, EXACT),
            DataType::Float16 => float(65504.0),
            DataType::Float32 => float(f32::MAX as f64),
            DataType::Float64 | DataType::String => float(f64::MAX),
        }
    }

    /// Whether `v` is one of the range's values.
    pub fn contains(&self, v: f64) -> bool {
        if v.is_nan() {
            return !self.integer;
        }
        v >= self.min && v <= self.max && (!self.integer || v.fract() == 0.0)
    }
}

impl std::fmt::Display for ValueRange {
    /// `0 to 255, whole numbers` or `-3.4028234663852886e38 to 3.4028234663852886e38, or NaN`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.integer {
            write!(f, "{} to {}, whole numbers", self.min, self.max)
        } else {
            write!(f, "{:e} to {:e}, or NaN", self.min, self.max)
        }
    }
}

/// How a value computed in `f64` (an answer, a blend of answers) becomes a band's or a
/// property's value, the same way everywhere: integers are rounded half away from zero
/// (2.5 -> 3, -2.5 -> -3) and saturated at the type's range, NaN becoming 0; floats are
/// rounded to the nearest, an `f32` beyond its range becoming infinite.
pub trait FromF64: Copy {
    /// Converts `v`.
    fn from_f64(v: f64) -> Self {
        Self::from_f64_checked(v).0
    }
    /// Converts `v`, and says whether it was clamped: changed beyond rounding (outside the
    /// type's range, or NaN to an integer).
    fn from_f64_checked(v: f64) -> (Self, bool);
    /// Whether `self` and `other` are the same value the way a reader matches nodata (NaN
    /// matching NaN).
    fn same_as(self, other: Self) -> bool;
}

macro_rules! from_f64_int {
    ($($t:ty),*) => {$(
        impl FromF64 for $t {
            #[inline]
            fn from_f64_checked(v: f64) -> (Self, bool) {
                let r = v.round();
                // `MAX as f64 + 1.0` is exact for every width (2^8 .. 2^64); `as` saturates
                // and takes NaN to 0.
                let inside = r >= <$t>::MIN as f64 && r < <$t>::MAX as f64 + 1.0;
                (r as $t, !inside)
            }
            #[inline]
            fn same_as(self, other: Self) -> bool {
                self == other
            }
        }
    )*};
}
from_f64_int!(u8, i8, u16, i16, u32, i32, u64, i64);

impl FromF64 for f32 {
    #[inline]
    fn from_f64_checked(v: f64) -> (Self, bool) {
        let x = v as f32;
        (x, x.is_infinite() && v.is_finite())
    }
    #[inline]
    fn same_as(self, other: Self) -> bool {
        self == other || (self.is_nan() && other.is_nan())
    }
}

impl FromF64 for f64 {
    #[inline]
    fn from_f64_checked(v: f64) -> (Self, bool) {
        (v, false)
    }
    #[inline]
    fn same_as(self, other: Self) -> bool {
        self == other || (self.is_nan() && other.is_nan())
    }
}

/// `v` as a whole number of the integer type `t`, the way [`FromF64`] writes it into a raster
/// band of `t` (rounded half away from zero, saturated, NaN to 0; bool as 0 or 1), widened to
/// `i64` (a `uint64` beyond `i64::MAX` saturates there); with whether it was clamped. `None`
/// for float and string types. For vector fields, which hold integers as `i64`.
pub fn to_integer(v: f64, t: DataType) -> Option<(i64, bool)> {
    fn as_i64<T: FromF64 + Into<i128>>(v: f64) -> (i64, bool) {
        let (x, clamped) = T::from_f64_checked(v);
        let wide: i128 = x.into();
        match i64::try_from(wide) {
            Ok(x) => (x, clamped),
            Err(_) => (i64::MAX, true),
        }
    }
    Some(match t {
        DataType::Bool => {
            let (x, clamped) = u8::from_f64_checked(v);
            (x.min(1) as i64, clamped || x > 1)
        }
        DataType::Uint8 => as_i64::<u8>(v),
        DataType::Int8 => as_i64::<i8>(v),
        DataType::Uint16 => as_i64::<u16>(v),
        DataType::Int16 => as_i64::<i16>(v),
        DataType::Uint32 => as_i64::<u32>(v),
        DataType::Int32 => as_i64::<i32>(v),
        DataType::Uint64 => as_i64::<u64>(v),
        DataType::Int64 => as_i64::<i64>(v),
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::String => {
            return None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_half_away_and_saturate_with_a_flag() {
        assert_eq!(u8::from_f64_checked(2.6), (3, false));
        assert_eq!(u8::from_f64_checked(2.5), (3, false));
        assert_eq!(i16::from_f64_checked(-2.5), (-3, false));
        assert_eq!(u8::from_f64_checked(255.4), (255, false));
        assert_eq!(u8::from_f64_checked(255.5), (255, true));
        assert_eq!(u8::from_f64_checked(-0.4), (0, false));
        assert_eq!(u8::from_f64_checked(-0.6), (0, true));
        assert_eq!(u8::from_f64_checked(f64::NAN), (0, true));
        assert_eq!(i64::from_f64_checked(9.3e18), (i64::MAX, true));
        assert_eq!(i64::from_f64_checked(i64::MIN as f64), (i64::MIN, false));
        assert_eq!(
            u64::from_f64_checked(1.8446744073709552e19),
            (u64::MAX, true)
        );
        assert_eq!(f32::from_f64_checked(1e39), (f32::INFINITY, true));
        assert_eq!(f32::from_f64_checked(f64::INFINITY), (f32::INFINITY, false));
        assert!(f32::NAN.same_as(f32::NAN) && !0u8.same_as(1));
    }

    #[test]
    fn properties_get_the_rasters_integers() {
        assert_eq!(to_integer(2.6, DataType::Int64), Some((3, false)));
        assert_eq!(to_integer(-2.5, DataType::Int32), Some((-3, false)));
        assert_eq!(to_integer(300.0, DataType::Uint8), Some((255, true)));
        assert_eq!(to_integer(f64::NAN, DataType::Int16), Some((0, true)));
        assert_eq!(to_integer(1e19, DataType::Uint64), Some((i64::MAX, true)));
        assert_eq!(to_integer(2.0, DataType::Bool), Some((1, true)));
        assert_eq!(to_integer(2.6, DataType::Float32), None);
    }

    #[test]
    fn value_ranges_hold_what_the_type_stores() {
        let u8r = ValueRange::of(DataType::Uint8);
        assert!(u8r.contains(0.0) && u8r.contains(255.0));
        assert!(!u8r.contains(256.0) && !u8r.contains(-1.0) && !u8r.contains(1.5));
        assert!(!u8r.contains(f64::NAN));
        assert_eq!(u8r.to_string(), "0 to 255, whole numbers");
        let f = ValueRange::of(DataType::Float32);
        assert!(f.contains(f64::NAN) && f.contains(-9999.0) && !f.contains(1e39));
    }

    #[test]
    fn promotion_keeps_every_value() {
        use DataType::*;
        assert_eq!(common_type(&[Uint8]).unwrap(), GdalDataType::UInt8);
        assert_eq!(common_type(&[Uint8, Int16]).unwrap(), GdalDataType::Int16);
        assert_eq!(common_type(&[Uint16, Int16]).unwrap(), GdalDataType::Int32);
        assert_eq!(
            common_type(&[Float32, Uint8]).unwrap(),
            GdalDataType::Float32
        );
        assert_eq!(
            common_type(&[Float32, Int32]).unwrap(),
            GdalDataType::Float64
        );
        assert_eq!(
            common_type(&[Bool, Float16]).unwrap(),
            GdalDataType::Float32
        );
        assert!(common_type(&[String]).is_err());
    }
}
