//! TensorFlow `DataType` numbers: names for listings and the set prepare supports.

use ee_tensor_proto::DataType;

pub(crate) const DT_INT32: i32 = 3;
pub(crate) const DT_STRING: i32 = 7;
pub(crate) const DT_BOOL: i32 = 10;
pub(crate) const DT_RESOURCE: i32 = 20;
pub(crate) const DT_VARIANT: i32 = 21;

/// The dtypes Earth Engine's TensorProtos carry (those of [`ee_tensor_proto::DataType`]).
pub(crate) fn supported(code: i32) -> Option<DataType> {
    // Reference types (code + 100) are not placeholder or output types we accept.
    if code > 100 {
        return None;
    }
    DataType::from_tf_code(code).ok()
}

/// Comma list of the supported dtype names, for error messages.
pub(crate) fn supported_names() -> String {
    ee_tensor_proto::ALL_DATA_TYPES
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A readable name for any TensorFlow dtype number: numpy names for the supported ones,
/// TensorFlow's enum names for the rest.
pub(crate) fn name(code: i32) -> String {
    if code > 100 {
        return format!("{}_ref", name(code - 100));
    }
    if let Some(d) = supported(code) {
        return d.name().to_string();
    }
    let base = match code {
        0 => "DT_INVALID",
        8 => "complex64",
        11 => "qint8",
        12 => "quint8",
        13 => "qint32",
        14 => "bfloat16",
        15 => "qint16",
        16 => "quint16",
        18 => "complex128",
        20 => "resource",
        21 => "variant",
        _ => return format!("dtype {code}"),
    };
    base.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_cover_supported_and_other_types() {
        assert_eq!(super::name(1), "float32");
        assert_eq!(super::name(7), "string");
        assert_eq!(super::name(20), "resource");
        assert_eq!(super::name(101), "float32_ref");
        assert_eq!(super::name(120), "resource_ref");
        assert_eq!(super::name(99), "dtype 99");
        assert!(super::supported(1).is_some());
        assert!(super::supported(101).is_none());
        assert!(super::supported(20).is_none());
        assert!(super::supported_names().contains("uint64"));
    }
}
