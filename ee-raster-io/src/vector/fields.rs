//! What a layer's fields and values are: the existing fields as OGR reports them and the
//! values read from them, and the new fields to append with their values.

use gdal_sys::OGRFieldType;

/// The type of an existing field, as OGR reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// 32-bit integer.
    Integer,
    /// 64-bit integer.
    Integer64,
    /// Double.
    Real,
    /// Text.
    String,
    /// List of 32-bit integers.
    IntegerList,
    /// List of 64-bit integers.
    Integer64List,
    /// List of doubles.
    RealList,
    /// List of texts.
    StringList,
    /// Anything else (dates, binary), by OGR's type name.
    Other(String),
}

impl FieldKind {
    pub(super) fn from_ogr(t: OGRFieldType::Type) -> Self {
        match t {
            OGRFieldType::OFTInteger => FieldKind::Integer,
            OGRFieldType::OFTInteger64 => FieldKind::Integer64,
            OGRFieldType::OFTReal => FieldKind::Real,
            OGRFieldType::OFTString => FieldKind::String,
            OGRFieldType::OFTIntegerList => FieldKind::IntegerList,
            OGRFieldType::OFTInteger64List => FieldKind::Integer64List,
            OGRFieldType::OFTRealList => FieldKind::RealList,
            OGRFieldType::OFTStringList => FieldKind::StringList,
            other => FieldKind::Other(gdal::vector::field_type_to_name(other)),
        }
    }

    /// True for numbers and lists of numbers.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            FieldKind::Integer
                | FieldKind::Integer64
                | FieldKind::Real
                | FieldKind::IntegerList
                | FieldKind::Integer64List
                | FieldKind::RealList
        )
    }
}

impl std::fmt::Display for FieldKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldKind::Other(name) => f.write_str(name),
            other => write!(f, "{other:?}"),
        }
    }
}

/// An existing field of the layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: FieldKind,
}

/// One field's value in one feature.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Unset or null.
    Null,
    /// An integer or real field.
    Number(f64),
    /// An integer or real list field.
    Numbers(Vec<f64>),
    /// A text field (may hold a number or a JSON array; the caller decides).
    Text(String),
    /// A list of texts.
    Texts(Vec<String>),
    /// A value of another type (date, binary), described.
    Other(String),
}

/// The chosen fields of one feature.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureValues {
    /// 0-based position in the layer's reading order.
    pub index: usize,
    /// The feature's FID, when it has one.
    pub fid: Option<u64>,
    /// One value per field asked for, in the order asked.
    pub values: Vec<Value>,
}

impl FeatureValues {
    /// Names the feature for messages: `feature 3 (FID 7)`.
    pub fn label(&self) -> String {
        feature_label(self.index, self.fid)
    }
}

/// `feature INDEX (FID n)`, or `feature INDEX` without a FID.
pub fn feature_label(index: usize, fid: Option<u64>) -> String {
    match fid {
        Some(fid) => format!("feature {index} (FID {fid})"),
        None => format!("feature {index}"),
    }
}

/// The element type of a new field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewFieldType {
    /// Double (`Real`, `RealList`).
    Real,
    /// 32-bit integer (`Integer`, `IntegerList`).
    Integer,
    /// 64-bit integer (`Integer64`, `Integer64List`).
    Integer64,
}

/// A field to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewField {
    /// Its name.
    pub name: String,
    /// Element type.
    pub ty: NewFieldType,
    /// `None`: a scalar; `Some(n)`: `n` values per feature (a list field, or `n` fields
    /// `NAME_0`..`NAME_{n-1}` where the format has no lists).
    pub length: Option<usize>,
}

/// A new field's value in one feature.
#[derive(Clone, Debug, PartialEq)]
pub enum NewValue {
    /// Left null.
    Null,
    /// A real scalar.
    Real(f64),
    /// An integer scalar.
    Integer(i64),
    /// Real values of an array field.
    Reals(Vec<f64>),
    /// Integer values of an array field.
    Integers(Vec<i64>),
}
