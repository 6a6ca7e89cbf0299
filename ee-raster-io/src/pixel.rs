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

/// The default nodata of a GDAL type: NaN for floats, the type's maximum for integers.
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

#[cfg(test)]
mod tests {
    use super::*;

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
