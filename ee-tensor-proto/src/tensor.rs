//! `Tensor`: an n-dimensional array of one of the supported element types, backed by ndarray.
//!
//! Numeric and boolean element types implement [`Element`], which knows their `DataType` and
//! their little-endian wire encoding; strings are arrays of byte vectors.

use half::f16;
use ndarray::{ArrayD, Axis, IxDyn};

use crate::{DataType, Error, Result};

/// A tensor of any supported element type.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    /// `float16`
    F16(ArrayD<f16>),
    /// `float32`
    F32(ArrayD<f32>),
    /// `float64`
    F64(ArrayD<f64>),
    /// `int8`
    I8(ArrayD<i8>),
    /// `int16`
    I16(ArrayD<i16>),
    /// `int32`
    I32(ArrayD<i32>),
    /// `int64`
    I64(ArrayD<i64>),
    /// `uint8`
    U8(ArrayD<u8>),
    /// `uint16`
    U16(ArrayD<u16>),
    /// `uint32`
    U32(ArrayD<u32>),
    /// `uint64`
    U64(ArrayD<u64>),
    /// `bool`
    Bool(ArrayD<bool>),
    /// `string` (arbitrary bytes per element)
    String(ArrayD<Vec<u8>>),
}

/// Applies `$body` to the array inside any variant, binding it as `$a`; with `numeric`
/// first, only to the numeric variants (bools and strings give `None`).
macro_rules! with_array {
    ($t:expr, $a:ident => $body:expr) => {
        $crate::tensor::with_array!(@match $t, $a => $body; Tensor::Bool($a) => $body, Tensor::String($a) => $body)
    };
    (numeric $t:expr, $a:ident => $body:expr) => {
        $crate::tensor::with_array!(@match $t, $a => $body; Tensor::Bool(_) | Tensor::String(_) => None)
    };
    (@match $t:expr, $a:ident => $body:expr; $($rest:tt)*) => {
        match $t {
            Tensor::F16($a) => $body,
            Tensor::F32($a) => $body,
            Tensor::F64($a) => $body,
            Tensor::I8($a) => $body,
            Tensor::I16($a) => $body,
            Tensor::I32($a) => $body,
            Tensor::I64($a) => $body,
            Tensor::U8($a) => $body,
            Tensor::U16($a) => $body,
            Tensor::U32($a) => $body,
            Tensor::U64($a) => $body,
            $($rest)*
        }
    };
}
pub(crate) use with_array;

/// Rebuilds a tensor of the same variant from the array inside it: `$body` maps `$a` to a new
/// array of the same element type.
macro_rules! map_array {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            Tensor::F16($a) => Tensor::F16($body),
            Tensor::F32($a) => Tensor::F32($body),
            Tensor::F64($a) => Tensor::F64($body),
            Tensor::I8($a) => Tensor::I8($body),
            Tensor::I16($a) => Tensor::I16($body),
            Tensor::I32($a) => Tensor::I32($body),
            Tensor::I64($a) => Tensor::I64($body),
            Tensor::U8($a) => Tensor::U8($body),
            Tensor::U16($a) => Tensor::U16($body),
            Tensor::U32($a) => Tensor::U32($body),
            Tensor::U64($a) => Tensor::U64($body),
            Tensor::Bool($a) => Tensor::Bool($body),
            Tensor::String($a) => Tensor::String($body),
        }
    };
}

/// A fixed-size element type: numbers and bools.
pub trait Element: Copy + Default + Send + Sync + std::fmt::Debug + 'static {
    /// The element's data type.
    const DTYPE: DataType;
    /// Wraps an array of this element type into a [`Tensor`].
    fn into_tensor(array: ArrayD<Self>) -> Tensor;
    /// The array inside `tensor` when it holds this element type.
    fn array(tensor: &Tensor) -> Option<&ArrayD<Self>>;
    /// Appends the little-endian encoding of `values` to `out`.
    fn extend_le(values: &[Self], out: &mut Vec<u8>);
    /// Decodes little-endian `bytes` (a whole number of elements) into values.
    fn from_le(bytes: &[u8]) -> Vec<Self>;
}

macro_rules! pod_element {
    ($t:ty, $variant:ident, $dtype:expr) => {
        impl Element for $t {
            const DTYPE: DataType = $dtype;
            fn into_tensor(array: ArrayD<Self>) -> Tensor {
                Tensor::$variant(array)
            }
            fn array(tensor: &Tensor) -> Option<&ArrayD<Self>> {
                match tensor {
                    Tensor::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn extend_le(values: &[Self], out: &mut Vec<u8>) {
                #[cfg(target_endian = "little")]
                out.extend_from_slice(bytemuck::cast_slice(values));
                #[cfg(not(target_endian = "little"))]
                for v in values {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            fn from_le(bytes: &[u8]) -> Vec<Self> {
                #[cfg(target_endian = "little")]
                {
                    bytemuck::pod_collect_to_vec(bytes)
                }
                #[cfg(not(target_endian = "little"))]
                {
                    bytes
                        .chunks_exact(std::mem::size_of::<Self>())
                        .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk size")))
                        .collect()
                }
            }
        }
    };
}

pod_element!(f16, F16, DataType::Float16);
pod_element!(f32, F32, DataType::Float32);
pod_element!(f64, F64, DataType::Float64);
pod_element!(i8, I8, DataType::Int8);
pod_element!(i16, I16, DataType::Int16);
pod_element!(i32, I32, DataType::Int32);
pod_element!(i64, I64, DataType::Int64);
pod_element!(u8, U8, DataType::Uint8);
pod_element!(u16, U16, DataType::Uint16);
pod_element!(u32, U32, DataType::Uint32);
pod_element!(u64, U64, DataType::Uint64);

impl Element for bool {
    const DTYPE: DataType = DataType::Bool;
    fn into_tensor(array: ArrayD<Self>) -> Tensor {
        Tensor::Bool(array)
    }
    fn array(tensor: &Tensor) -> Option<&ArrayD<Self>> {
        match tensor {
            Tensor::Bool(a) => Some(a),
            _ => None,
        }
    }
    fn extend_le(values: &[Self], out: &mut Vec<u8>) {
        out.extend(values.iter().map(|&b| b as u8));
    }
    fn from_le(bytes: &[u8]) -> Vec<Self> {
        bytes.iter().map(|&b| b != 0).collect()
    }
}

impl<T: Element> From<ArrayD<T>> for Tensor {
    fn from(array: ArrayD<T>) -> Self {
        T::into_tensor(array)
    }
}

impl From<ArrayD<Vec<u8>>> for Tensor {
    fn from(array: ArrayD<Vec<u8>>) -> Self {
        Tensor::String(array)
    }
}

/// Number of elements a shape holds, or an error if the product overflows.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

impl Tensor {
    /// A tensor of `dtype` and `shape` filled with zeros (empty strings, `false`).
    pub fn zeros(dtype: DataType, shape: &[usize]) -> Self {
        let dim = IxDyn(shape);
        match dtype {
            DataType::Float16 => Tensor::F16(ArrayD::from_elem(dim, f16::ZERO)),
            DataType::Float32 => Tensor::F32(ArrayD::zeros(dim)),
            DataType::Float64 => Tensor::F64(ArrayD::zeros(dim)),
            DataType::Int8 => Tensor::I8(ArrayD::zeros(dim)),
            DataType::Int16 => Tensor::I16(ArrayD::zeros(dim)),
            DataType::Int32 => Tensor::I32(ArrayD::zeros(dim)),
            DataType::Int64 => Tensor::I64(ArrayD::zeros(dim)),
            DataType::Uint8 => Tensor::U8(ArrayD::zeros(dim)),
            DataType::Uint16 => Tensor::U16(ArrayD::zeros(dim)),
            DataType::Uint32 => Tensor::U32(ArrayD::zeros(dim)),
            DataType::Uint64 => Tensor::U64(ArrayD::zeros(dim)),
            DataType::Bool => Tensor::Bool(ArrayD::from_elem(dim, false)),
            DataType::String => Tensor::String(ArrayD::from_elem(dim, Vec::new())),
        }
    }

    /// Builds a tensor from row-major values and a shape; the counts must agree.
    pub fn from_vec<T: Element>(shape: &[usize], values: Vec<T>) -> Result<Self> {
        let found = values.len();
        ArrayD::from_shape_vec(IxDyn(shape), values)
            .map(T::into_tensor)
            .map_err(|_| Error::ElementCount {
                dtype: T::DTYPE,
                shape: shape.to_vec(),
                field: "values",
                expected: element_count(shape).unwrap_or(usize::MAX),
                found,
            })
    }

    /// Builds a string tensor from row-major values and a shape.
    pub fn from_strings(shape: &[usize], values: Vec<Vec<u8>>) -> Result<Self> {
        let found = values.len();
        ArrayD::from_shape_vec(IxDyn(shape), values)
            .map(Tensor::String)
            .map_err(|_| Error::ElementCount {
                dtype: DataType::String,
                shape: shape.to_vec(),
                field: "values",
                expected: element_count(shape).unwrap_or(usize::MAX),
                found,
            })
    }

    /// The element type.
    pub fn dtype(&self) -> DataType {
        match self {
            Tensor::F16(_) => DataType::Float16,
            Tensor::F32(_) => DataType::Float32,
            Tensor::F64(_) => DataType::Float64,
            Tensor::I8(_) => DataType::Int8,
            Tensor::I16(_) => DataType::Int16,
            Tensor::I32(_) => DataType::Int32,
            Tensor::I64(_) => DataType::Int64,
            Tensor::U8(_) => DataType::Uint8,
            Tensor::U16(_) => DataType::Uint16,
            Tensor::U32(_) => DataType::Uint32,
            Tensor::U64(_) => DataType::Uint64,
            Tensor::Bool(_) => DataType::Bool,
            Tensor::String(_) => DataType::String,
        }
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        with_array!(self, a => a.shape())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_array!(self, a => a.len())
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The array when the tensor holds elements of type `T`.
    pub fn array<T: Element>(&self) -> Option<&ArrayD<T>> {
        T::array(self)
    }

    /// The array of strings when this is a string tensor.
    pub fn strings(&self) -> Option<&ArrayD<Vec<u8>>> {
        match self {
            Tensor::String(a) => Some(a),
            _ => None,
        }
    }

    /// Little-endian row-major bytes of a numeric or bool tensor (`None` for strings).
    pub fn to_le_bytes(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.write_le_bytes(&mut out).then_some(out)
    }

    /// The values of a numeric tensor in standard layout as its little-endian bytes, borrowed
    /// (encoders base64 them without a copy). `None` for bools and strings, other layouts and
    /// big-endian targets.
    pub(crate) fn le_bytes(&self) -> Option<&[u8]> {
        fn bytes<T: bytemuck::Pod>(a: &ArrayD<T>) -> Option<&[u8]> {
            Some(bytemuck::cast_slice(a.as_slice()?))
        }
        if cfg!(not(target_endian = "little")) {
            return None;
        }
        with_array!(numeric self, a => bytes(a))
    }

    /// The values of a numeric tensor in standard layout as its little-endian bytes, to be
    /// filled in place (decoders write straight into a tensor made by [`Tensor::zeros`]).
    /// `None` for bools and strings, other layouts and big-endian targets.
    pub(crate) fn le_bytes_mut(&mut self) -> Option<&mut [u8]> {
        fn bytes<T: bytemuck::Pod>(a: &mut ArrayD<T>) -> Option<&mut [u8]> {
            Some(bytemuck::cast_slice_mut(a.as_slice_mut()?))
        }
        if cfg!(not(target_endian = "little")) {
            return None;
        }
        with_array!(numeric self, a => bytes(a))
    }

    /// Appends the little-endian row-major bytes of a numeric or bool tensor to `out`;
    /// returns false (writing nothing) for strings.
    pub fn write_le_bytes(&self, out: &mut Vec<u8>) -> bool {
        fn put<T: Element>(a: &ArrayD<T>, out: &mut Vec<u8>) {
            match a.as_slice() {
                Some(s) => T::extend_le(s, out),
                None => T::extend_le(&a.iter().copied().collect::<Vec<_>>(), out),
            }
        }
        match self {
            Tensor::F16(a) => put(a, out),
            Tensor::F32(a) => put(a, out),
            Tensor::F64(a) => put(a, out),
            Tensor::I8(a) => put(a, out),
            Tensor::I16(a) => put(a, out),
            Tensor::I32(a) => put(a, out),
            Tensor::I64(a) => put(a, out),
            Tensor::U8(a) => put(a, out),
            Tensor::U16(a) => put(a, out),
            Tensor::U32(a) => put(a, out),
            Tensor::U64(a) => put(a, out),
            Tensor::Bool(a) => put(a, out),
            Tensor::String(_) => return false,
        }
        true
    }

    /// Builds a numeric or bool tensor from little-endian row-major bytes.
    pub fn from_le_bytes(dtype: DataType, shape: &[usize], bytes: &[u8]) -> Result<Self> {
        let size = dtype.size().ok_or_else(|| {
            Error::payload(
                "raw tensor",
                "string tensors have no fixed-size raw encoding",
            )
        })?;
        let n = element_count(shape).ok_or_else(|| Error::InvalidShape {
            shape: shape.iter().map(|&d| d as i64).collect(),
            reason: "element count overflows".into(),
        })?;
        if n.checked_mul(size) != Some(bytes.len()) {
            return Err(Error::ElementCount {
                dtype,
                shape: shape.to_vec(),
                field: "raw bytes",
                expected: n.saturating_mul(size),
                found: bytes.len(),
            });
        }
        fn build<T: Element>(shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
            Tensor::from_vec(shape, T::from_le(bytes))
        }
        match dtype {
            DataType::Float16 => build::<f16>(shape, bytes),
            DataType::Float32 => build::<f32>(shape, bytes),
            DataType::Float64 => build::<f64>(shape, bytes),
            DataType::Int8 => build::<i8>(shape, bytes),
            DataType::Int16 => build::<i16>(shape, bytes),
            DataType::Int32 => build::<i32>(shape, bytes),
            DataType::Int64 => build::<i64>(shape, bytes),
            DataType::Uint8 => build::<u8>(shape, bytes),
            DataType::Uint16 => build::<u16>(shape, bytes),
            DataType::Uint32 => build::<u32>(shape, bytes),
            DataType::Uint64 => build::<u64>(shape, bytes),
            DataType::Bool => build::<bool>(shape, bytes),
            DataType::String => unreachable!("strings rejected above"),
        }
    }

    /// Equality that compares floats by bit pattern, so NaN equals the same NaN.
    pub fn bit_eq(&self, other: &Tensor) -> bool {
        if self.dtype() != other.dtype() || self.shape() != other.shape() {
            return false;
        }
        match (self, other) {
            (Tensor::String(a), Tensor::String(b)) => a == b,
            _ => self.to_le_bytes() == other.to_le_bytes(),
        }
    }

    /// The same elements under another shape with the same element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let ok = element_count(shape) == Some(self.len());
        if !ok {
            return Err(Error::InvalidShape {
                shape: shape.iter().map(|&d| d as i64).collect(),
                reason: format!(
                    "cannot hold the {} elements of a tensor of shape {:?}",
                    self.len(),
                    self.shape()
                ),
            });
        }
        Ok(map_array!(self, a => {
            let flat: Vec<_> = a.iter().cloned().collect();
            ArrayD::from_shape_vec(IxDyn(shape), flat).expect("element count checked")
        }))
    }

    /// Stacks tensors of one dtype and shape along a new leading (batch) axis.
    pub fn stack(parts: &[&Tensor]) -> Result<Tensor> {
        let first = parts
            .first()
            .ok_or_else(|| Error::payload("batch", "cannot stack zero tensors"))?;
        for (i, p) in parts.iter().enumerate() {
            if p.dtype() != first.dtype() || p.shape() != first.shape() {
                return Err(Error::payload(
                    "batch",
                    format!(
                        "instance {i} is {} {:?}, instance 0 is {} {:?}: a batch needs one dtype and shape",
                        p.dtype(),
                        p.shape(),
                        first.dtype(),
                        first.shape()
                    ),
                ));
            }
        }
        let mut shape = vec![parts.len()];
        shape.extend_from_slice(first.shape());
        macro_rules! stack_as {
            ($variant:ident) => {{
                let mut flat = Vec::with_capacity(first.len() * parts.len());
                for p in parts {
                    if let Tensor::$variant(a) = p {
                        match a.as_slice() {
                            Some(s) => flat.extend_from_slice(s),
                            None => flat.extend(a.iter().cloned()),
                        }
                    }
                }
                Tensor::$variant(
                    ArrayD::from_shape_vec(IxDyn(&shape), flat).expect("element count checked"),
                )
            }};
        }
        Ok(match first {
            Tensor::F16(_) => stack_as!(F16),
            Tensor::F32(_) => stack_as!(F32),
            Tensor::F64(_) => stack_as!(F64),
            Tensor::I8(_) => stack_as!(I8),
            Tensor::I16(_) => stack_as!(I16),
            Tensor::I32(_) => stack_as!(I32),
            Tensor::I64(_) => stack_as!(I64),
            Tensor::U8(_) => stack_as!(U8),
            Tensor::U16(_) => stack_as!(U16),
            Tensor::U32(_) => stack_as!(U32),
            Tensor::U64(_) => stack_as!(U64),
            Tensor::Bool(_) => stack_as!(Bool),
            Tensor::String(_) => stack_as!(String),
        })
    }

    /// The tensor with its axes reordered (`axes[i]` is the old axis that becomes axis `i`),
    /// in standard layout; `axes` must be a permutation of the tensor's axes.
    pub fn permute(&self, axes: &[usize]) -> Result<Tensor> {
        let rank = self.shape().len();
        let mut seen = vec![false; rank];
        let ok = axes.len() == rank
            && axes
                .iter()
                .all(|&a| a < rank && !std::mem::replace(&mut seen[a], true));
        if !ok {
            return Err(Error::InvalidShape {
                shape: self.shape().iter().map(|&d| d as i64).collect(),
                reason: format!("{axes:?} is not a permutation of its {rank} axes"),
            });
        }
        Ok(
            map_array!(self, a => a.view().permuted_axes(IxDyn(axes)).as_standard_layout().into_owned()),
        )
    }

    /// Splits a batched tensor along its leading axis into one tensor per instance.
    pub fn unstack(&self) -> Result<Vec<Tensor>> {
        if self.shape().is_empty() {
            return Err(Error::payload(
                "batch",
                "a scalar has no batch axis to split",
            ));
        }
        let n = self.shape()[0];
        Ok((0..n)
            .map(|i| map_array!(self, a => a.index_axis(Axis(0), i).to_owned()))
            .collect())
    }
}

/// Conversions through `f64`: arithmetic on the values of any numeric tensor (inputs built
/// from raster values, answers read as numbers), and casts between element types.
impl Tensor {
    /// The values as `f64`: exact for every type but 64-bit integers beyond 2^53 (rounded to
    /// nearest); booleans as 0 and 1. `None` for strings.
    pub fn to_f64(&self) -> Option<ArrayD<f64>> {
        Some(match self {
            Tensor::F32(a) => a.mapv(f64::from),
            Tensor::F64(a) => a.clone(),
            Tensor::F16(a) => a.mapv(|v| v.to_f64()),
            Tensor::I8(a) => a.mapv(f64::from),
            Tensor::I16(a) => a.mapv(f64::from),
            Tensor::I32(a) => a.mapv(f64::from),
            Tensor::I64(a) => a.mapv(|v| v as f64),
            Tensor::U8(a) => a.mapv(f64::from),
            Tensor::U16(a) => a.mapv(f64::from),
            Tensor::U32(a) => a.mapv(f64::from),
            Tensor::U64(a) => a.mapv(|v| v as f64),
            Tensor::Bool(a) => a.mapv(|v| v as u8 as f64),
            Tensor::String(_) => return None,
        })
    }

    /// `values` as a tensor of `dtype`, cast as Rust's `as` casts: integers truncated toward
    /// zero and saturated at the type's range (NaN gives 0), floats rounded to nearest; for
    /// `bool`, anything but 0 (NaN included) is true. `None` for `string`.
    pub fn from_f64(values: &ArrayD<f64>, dtype: DataType) -> Option<Tensor> {
        let a = values;
        Some(match dtype {
            DataType::Float32 => Tensor::F32(a.mapv(|v| v as f32)),
            DataType::Float64 => Tensor::F64(a.clone()),
            DataType::Float16 => Tensor::F16(a.mapv(f16::from_f64)),
            DataType::Int8 => Tensor::I8(a.mapv(|v| v as i8)),
            DataType::Int16 => Tensor::I16(a.mapv(|v| v as i16)),
            DataType::Int32 => Tensor::I32(a.mapv(|v| v as i32)),
            DataType::Int64 => Tensor::I64(a.mapv(|v| v as i64)),
            DataType::Uint8 => Tensor::U8(a.mapv(|v| v as u8)),
            DataType::Uint16 => Tensor::U16(a.mapv(|v| v as u16)),
            DataType::Uint32 => Tensor::U32(a.mapv(|v| v as u32)),
            DataType::Uint64 => Tensor::U64(a.mapv(|v| v as u64)),
            DataType::Bool => Tensor::Bool(a.mapv(|v| v != 0.0)),
            DataType::String => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_and_unstack_are_inverse() {
        let a = Tensor::from_vec(&[2, 3], (0..6).map(|v| v as f32).collect()).unwrap();
        let b = Tensor::from_vec(&[2, 3], (6..12).map(|v| v as f32).collect()).unwrap();
        let s = Tensor::stack(&[&a, &b]).unwrap();
        assert_eq!(s.shape(), &[2, 2, 3]);
        assert_eq!(s.unstack().unwrap(), vec![a, b]);
    }

    #[test]
    fn stack_refuses_mixed_shapes() {
        let a = Tensor::zeros(DataType::Int32, &[2]);
        let b = Tensor::zeros(DataType::Int32, &[3]);
        let err = Tensor::stack(&[&a, &b]).unwrap_err().to_string();
        assert!(err.contains("instance 1"), "{err}");
    }

    #[test]
    fn le_bytes_round_trip_every_fixed_type() {
        for d in crate::ALL_DATA_TYPES {
            if d == DataType::String {
                continue;
            }
            let t = Tensor::zeros(d, &[3, 2]);
            let bytes = t.to_le_bytes().unwrap();
            assert_eq!(bytes.len(), 6 * d.size().unwrap());
            assert!(Tensor::from_le_bytes(d, &[3, 2], &bytes)
                .unwrap()
                .bit_eq(&t));
        }
        let err = Tensor::from_le_bytes(DataType::Float32, &[2], &[0; 7]).unwrap_err();
        assert!(err.to_string().contains("needs 8"), "{err}");
    }

    #[test]
    fn permute_reorders_axes_and_checks_them() {
        let t = Tensor::from_vec(&[2, 1, 3], (0..6).collect::<Vec<i32>>()).unwrap();
        let p = t.permute(&[1, 2, 0]).unwrap();
        assert_eq!(p.shape(), &[1, 3, 2]);
        assert_eq!(
            p.array::<i32>()
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![0, 3, 1, 4, 2, 5]
        );
        assert!(t.permute(&[0, 0, 1]).is_err() && t.permute(&[0, 1]).is_err());
    }

    #[test]
    fn f64_conversions_cast_as_rust_does() {
        let values =
            ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![-1.5, 0.0, 2.7, 300.0, f64::NAN, 1e20])
                .unwrap();
        let cast = |d| Tensor::from_f64(&values, d).unwrap();
        assert_eq!(
            cast(DataType::Uint8)
                .array::<u8>()
                .unwrap()
                .as_slice()
                .unwrap(),
            [0, 0, 2, 255, 0, 255]
        );
        assert_eq!(
            cast(DataType::Int8)
                .array::<i8>()
                .unwrap()
                .as_slice()
                .unwrap(),
            [-1, 0, 2, 127, 0, 127]
        );
        assert_eq!(
            cast(DataType::Bool)
                .array::<bool>()
                .unwrap()
                .as_slice()
                .unwrap(),
            [true, false, true, true, true, true]
        );
        assert_eq!(cast(DataType::Float16).shape(), [2, 3]);
        assert!(Tensor::from_f64(&values, DataType::String).is_none());
        // Every numeric type and bool comes back through f64 as it went (values they hold).
        let small = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.0, 1.0, 100.0]).unwrap();
        for d in crate::ALL_DATA_TYPES {
            if d == DataType::String {
                continue;
            }
            let t = Tensor::from_f64(&small, d).unwrap();
            assert_eq!(t.dtype(), d);
            let want = if d == DataType::Bool {
                small.mapv(|v| f64::from(u8::from(v != 0.0)))
            } else {
                small.clone()
            };
            assert_eq!(t.to_f64().unwrap(), want, "{d}");
        }
        assert!(Tensor::from_strings(&[1], vec![b"x".to_vec()])
            .unwrap()
            .to_f64()
            .is_none());
    }

    #[test]
    fn bit_eq_sees_nan_as_equal_to_itself() {
        let t = Tensor::from_vec(&[1], vec![f32::NAN]).unwrap();
        assert!(t.bit_eq(&t.clone()));
        assert_ne!(t, t.clone());
    }
}
