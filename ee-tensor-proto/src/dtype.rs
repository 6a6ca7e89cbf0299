//! `DataType`: the element types a tensor (and a raster band) can have, with their numbers and
//! names in every format we speak (TensorFlow enum, numpy, Earth Engine, KServe v2).

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Element type of a tensor. The discriminants are TensorFlow's `DataType` numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum DataType {
    /// 32-bit IEEE float (`DT_FLOAT`).
    Float32 = 1,
    /// 64-bit IEEE float (`DT_DOUBLE`).
    Float64 = 2,
    /// Signed 32-bit integer (`DT_INT32`).
    Int32 = 3,
    /// Unsigned 8-bit integer (`DT_UINT8`).
    Uint8 = 4,
    /// Signed 16-bit integer (`DT_INT16`).
    Int16 = 5,
    /// Signed 8-bit integer (`DT_INT8`).
    Int8 = 6,
    /// Byte string (`DT_STRING`).
    String = 7,
    /// Signed 64-bit integer (`DT_INT64`).
    Int64 = 9,
    /// Boolean, one byte per element on the wire (`DT_BOOL`).
    Bool = 10,
    /// Unsigned 16-bit integer (`DT_UINT16`).
    Uint16 = 17,
    /// 16-bit IEEE float (`DT_HALF`).
    Float16 = 19,
    /// Unsigned 32-bit integer (`DT_UINT32`).
    Uint32 = 22,
    /// Unsigned 64-bit integer (`DT_UINT64`).
    Uint64 = 23,
}

/// Every supported type, in TensorFlow enum order.
pub const ALL_DATA_TYPES: [DataType; 13] = [
    DataType::Float32,
    DataType::Float64,
    DataType::Int32,
    DataType::Uint8,
    DataType::Int16,
    DataType::Int8,
    DataType::String,
    DataType::Int64,
    DataType::Bool,
    DataType::Uint16,
    DataType::Float16,
    DataType::Uint32,
    DataType::Uint64,
];

impl DataType {
    /// TensorFlow's `DataType` enum number.
    pub fn tf_code(self) -> i32 {
        self as i32
    }

    /// The type with TensorFlow enum number `code`; reference types (`code + 100`) map to
    /// their value type as TensorFlow does. Unsupported numbers are an error naming them.
    pub fn from_tf_code(code: i32) -> Result<Self, Error> {
        let value = if code > 100 { code - 100 } else { code };
        ALL_DATA_TYPES
            .iter()
            .copied()
            .find(|d| d.tf_code() == value)
            .ok_or(Error::UnsupportedDtype { code })
    }

    /// Bytes per element, `None` for strings.
    pub fn size(self) -> Option<usize> {
        Some(match self {
            DataType::Uint8 | DataType::Int8 | DataType::Bool => 1,
            DataType::Uint16 | DataType::Int16 | DataType::Float16 => 2,
            DataType::Uint32 | DataType::Int32 | DataType::Float32 => 4,
            DataType::Uint64 | DataType::Int64 | DataType::Float64 => 8,
            DataType::String => return None,
        })
    }

    /// The numpy name (`float32`, `uint8`, `bool`, `string`...), used in messages and manifests.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Float32 => "float32",
            DataType::Float64 => "float64",
            DataType::Int32 => "int32",
            DataType::Uint8 => "uint8",
            DataType::Int16 => "int16",
            DataType::Int8 => "int8",
            DataType::String => "string",
            DataType::Int64 => "int64",
            DataType::Bool => "bool",
            DataType::Uint16 => "uint16",
            DataType::Float16 => "float16",
            DataType::Uint32 => "uint32",
            DataType::Uint64 => "uint64",
        }
    }

    /// The Open Inference Protocol (KServe v2) datatype name (`FP32`, `UINT8`, `BYTES`...).
    pub fn kserve_name(self) -> &'static str {
        match self {
            DataType::Float32 => "FP32",
            DataType::Float64 => "FP64",
            DataType::Int32 => "INT32",
            DataType::Uint8 => "UINT8",
            DataType::Int16 => "INT16",
            DataType::Int8 => "INT8",
            DataType::String => "BYTES",
            DataType::Int64 => "INT64",
            DataType::Bool => "BOOL",
            DataType::Uint16 => "UINT16",
            DataType::Float16 => "FP16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
        }
    }

    /// TensorFlow's enum name (`DT_FLOAT`, `DT_HALF`, `DT_STRING`...), as TF Serving's
    /// metadata writes it.
    pub fn tf_name(self) -> &'static str {
        match self {
            DataType::Float32 => "DT_FLOAT",
            DataType::Float64 => "DT_DOUBLE",
            DataType::Int32 => "DT_INT32",
            DataType::Uint8 => "DT_UINT8",
            DataType::Int16 => "DT_INT16",
            DataType::Int8 => "DT_INT8",
            DataType::String => "DT_STRING",
            DataType::Int64 => "DT_INT64",
            DataType::Bool => "DT_BOOL",
            DataType::Uint16 => "DT_UINT16",
            DataType::Float16 => "DT_HALF",
            DataType::Uint32 => "DT_UINT32",
            DataType::Uint64 => "DT_UINT64",
        }
    }

    /// True for the three float types.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            DataType::Float16 | DataType::Float32 | DataType::Float64
        )
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DataType {
    type Err = Error;

    /// Accepts numpy names (`float32`), Earth Engine pixel types (`float`, `double`, `int`,
    /// `byte`), TensorFlow names (`DT_FLOAT`, `half`) and KServe names (`FP32`), any case.
    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.trim().to_ascii_lowercase();
        let key = lower.strip_prefix("dt_").unwrap_or(&lower);
        Ok(match key {
            "float" | "float32" | "fp32" | "f32" => DataType::Float32,
            "double" | "float64" | "fp64" | "f64" => DataType::Float64,
            "half" | "float16" | "fp16" | "f16" => DataType::Float16,
            "int" | "int32" | "i32" => DataType::Int32,
            "int16" | "short" | "i16" => DataType::Int16,
            "int8" | "i8" => DataType::Int8,
            "int64" | "long" | "i64" => DataType::Int64,
            "uint8" | "byte" | "u8" => DataType::Uint8,
            "uint16" | "u16" => DataType::Uint16,
            "uint32" | "u32" => DataType::Uint32,
            "uint64" | "u64" => DataType::Uint64,
            "bool" | "boolean" => DataType::Bool,
            "string" | "bytes" | "str" => DataType::String,
            _ => {
                return Err(Error::UnknownDtypeName {
                    name: s.to_string(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_tensorflow_numbers() {
        let expected = [1, 2, 3, 4, 5, 6, 7, 9, 10, 17, 19, 22, 23];
        for (d, code) in ALL_DATA_TYPES.iter().zip(expected) {
            assert_eq!(d.tf_code(), code);
            assert_eq!(DataType::from_tf_code(code).unwrap(), *d);
            assert_eq!(DataType::from_tf_code(code + 100).unwrap(), *d);
            assert_eq!(d.tf_name().parse::<DataType>().unwrap(), *d);
        }
        assert!(matches!(
            DataType::from_tf_code(14),
            Err(Error::UnsupportedDtype { code: 14 })
        ));
    }

    #[test]
    fn names_parse_back() {
        for d in ALL_DATA_TYPES {
            assert_eq!(d.name().parse::<DataType>().unwrap(), d);
            assert_eq!(d.kserve_name().parse::<DataType>().unwrap(), d);
        }
        assert_eq!("DT_HALF".parse::<DataType>().unwrap(), DataType::Float16);
        assert_eq!("float".parse::<DataType>().unwrap(), DataType::Float32);
        assert!("complex64".parse::<DataType>().is_err());
    }
}
