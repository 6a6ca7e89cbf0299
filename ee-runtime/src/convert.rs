//! Element-type conversion of the tensors fed to a model (a band sent as `uint16` to a model
//! that takes `float32`). The arithmetic lives with the codec's [`Tensor`].

use ee_tensor_proto::{DataType, Tensor};
use ndarray::ArrayD;

/// Converts a numeric tensor to `dtype` through `f64` ([`Tensor::to_f64`], then
/// [`Tensor::from_f64`]'s `as` casts); the error says which side has no numbers.
pub fn convert(t: &Tensor, dtype: DataType) -> std::result::Result<Tensor, String> {
    if t.dtype() == dtype {
        return Ok(t.clone());
    }
    let f = t
        .to_f64()
        .ok_or_else(|| format!("a {} tensor cannot be converted to {dtype}", t.dtype()))?;
    Tensor::from_f64(&f, dtype).ok_or_else(|| format!("cannot convert to {dtype}"))
}

/// f64 values as a tensor of `dtype`: the same as [`Tensor::from_f64`] (where the
/// conversion lives), kept here for the callers that import it from this crate.
pub fn from_f64(a: &ArrayD<f64>, dtype: DataType) -> Option<Tensor> {
    Tensor::from_f64(a, dtype)
}
