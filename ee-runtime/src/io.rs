//! Tensors into and out of tract: instances are copied once, straight into the batch tensor
//! tract runs on (transposed to NCHW on the way where the plan wants it), and outputs once,
//! straight into one tensor per instance. Also the folding of an ONNX model's own
//! NHWC -> NCHW input transpose (and NCHW -> NHWC output transpose) into those copies.

use ee_tensor_proto::Tensor;
use ndarray::{ArrayD, ArrayView3, ArrayViewMut3, Axis, Ix3, IxDyn};
use tract_onnx::prelude::{
    Datum, DatumType, IntoTValue, TValue, Tensor as TractTensor, TractResult, TypedFact, TypedModel,
};
use tract_onnx::tract_core::model::SpecialOps;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::source::TypedSource;

/// Where the model's graph starts with a transpose of an input from NHWC to NCHW (and ends
/// with one of an output back), as ONNX exports of PyTorch models wrapped for Earth Engine
/// do, this makes the source NCHW and the output NCHW and records which: `ee-runtime` can
/// then feed NCHW and take NCHW, transposing in the copies it makes anyway. The point is
/// what tract does with the transposes otherwise: it pushes them through the graph, turning
/// the convolutions NHWC, and an NHWC convolution runs as im2col plus a matrix product where
/// an NCHW one with rows of at least 128 gets tract's direct convolution (5 to 10 times
/// faster on the demo model). `LocalModel` plans the folded graph and keeps it only where
/// tract does pick its direct convolution.
///
/// Returns, per input, whether it is now fed NCHW, and per output, whether it now comes
/// out NCHW.
pub(crate) fn fold_layout_transposes(
    typed: &mut TypedModel,
) -> TractResult<(Vec<bool>, Vec<bool>)> {
    let to_nchw = AxisOp::Move(3, 1);
    let to_nhwc = AxisOp::Move(1, 3);
    let inputs = typed.input_outlets()?.to_vec();
    let mut fed_nchw = vec![false; inputs.len()];
    for (i, source) in inputs.iter().enumerate() {
        let fact = typed.outlet_fact(*source)?.clone();
        let successors = typed.outlet_successors(*source).to_vec();
        let all_transposed = !successors.is_empty()
            && successors
                .iter()
                .all(|s| typed.node(s.node).op_as::<AxisOp>() == Some(&to_nchw));
        if fact.rank() != 4 || !all_transposed || typed.outputs.contains(source) {
            continue;
        }
        let s = fact.shape.to_tvec();
        let nchw = TypedFact::dt_shape(
            fact.datum_type,
            [s[0].clone(), s[3].clone(), s[1].clone(), s[2].clone()],
        );
        typed.node_mut(source.node).op = Box::new(TypedSource::new(nchw.clone()));
        typed.set_outlet_fact(*source, nchw)?;
        let name = typed.unique_name(format!("{}.ee_runtime_nhwc", typed.node(source.node).name));
        let name = name.into_owned();
        let back = typed.wire_node(name, to_nhwc.clone(), &[*source])?[0];
        for inlet in successors {
            typed.add_edge(back, inlet)?;
        }
        fed_nchw[i] = true;
    }
    let mut outputs = typed.output_outlets()?.to_vec();
    let mut out_nchw = vec![false; outputs.len()];
    for (j, outlet) in outputs.iter_mut().enumerate() {
        let transposed = typed.node(outlet.node).op_as::<AxisOp>() == Some(&to_nhwc);
        if !transposed || typed.outlet_fact(*outlet)?.rank() != 4 {
            continue;
        }
        let name = typed.unique_name(format!("{}.ee_runtime_nchw", typed.node(outlet.node).name));
        let name = name.into_owned();
        *outlet = typed.wire_node(name, to_nchw.clone(), &[*outlet])?[0];
        out_nchw[j] = true;
    }
    typed.select_output_outlets(&outputs)?;
    Ok((fed_nchw, out_nchw))
}

/// Stacks same-shaped, same-typed tensors into one tract tensor with a leading batch axis, in
/// one copy; with `nchw`, rank-3 HWC tensors become an NCHW batch.
pub(crate) fn stack(parts: &[&Tensor], nchw: bool) -> Result<TValue, String> {
    macro_rules! go {
        ($variant:ident) => {{
            let arrays = parts
                .iter()
                .map(|p| match p {
                    Tensor::$variant(a) => Ok(a),
                    _ => Err("tensors of one input must have one type".to_string()),
                })
                .collect::<Result<Vec<_>, String>>()?;
            stack_arrays(&arrays, nchw).map_err(|e| format!("{e:#}"))?
        }};
    }
    let t = match parts.first() {
        None => return Err("no tensors to stack".into()),
        Some(Tensor::F32(_)) => go!(F32),
        Some(Tensor::F64(_)) => go!(F64),
        Some(Tensor::F16(_)) => go!(F16),
        Some(Tensor::I8(_)) => go!(I8),
        Some(Tensor::I16(_)) => go!(I16),
        Some(Tensor::I32(_)) => go!(I32),
        Some(Tensor::I64(_)) => go!(I64),
        Some(Tensor::U8(_)) => go!(U8),
        Some(Tensor::U16(_)) => go!(U16),
        Some(Tensor::U32(_)) => go!(U32),
        Some(Tensor::U64(_)) => go!(U64),
        Some(Tensor::Bool(_)) => go!(Bool),
        Some(Tensor::String(_)) => {
            return Err("string tensors cannot be fed to a local model".into())
        }
    };
    Ok(t.into_tvalue())
}

fn stack_arrays<T: Datum + Copy>(arrays: &[&ArrayD<T>], nchw: bool) -> TractResult<TractTensor> {
    let inner = arrays.first().map(|a| a.shape()).unwrap_or(&[]);
    let mut shape = vec![arrays.len()];
    if nchw && inner.len() == 3 {
        shape.extend([inner[2], inner[0], inner[1]]);
    } else {
        shape.extend_from_slice(inner);
    }
    let mut t = TractTensor::zero_dt(T::datum_type(), &shape)?;
    {
        let mut view = t.to_plain_array_view_mut::<T>()?;
        for (i, a) in arrays.iter().enumerate() {
            let mut dst = view.index_axis_mut(Axis(0), i);
            if a.shape() != inner {
                return Err(tract_onnx::prelude::TractError::msg(
                    "shapes differ within a batch",
                ));
            }
            if nchw && inner.len() == 3 {
                let dst = dst.into_dimensionality::<Ix3>()?;
                let src = a.view().into_dimensionality::<Ix3>()?;
                hwc_to_chw(src, dst);
            } else {
                dst.assign(a);
            }
        }
    }
    Ok(t)
}

/// `dst[c, h, w] = src[h, w, c]`.
fn hwc_to_chw<T: Copy>(src: ArrayView3<T>, mut dst: ArrayViewMut3<T>) {
    let (h, w, c) = src.dim();
    match (src.as_slice(), dst.as_slice_mut()) {
        (Some(s), Some(d)) => transpose(s, h * w, c, d),
        _ => {
            for (y, row) in src.outer_iter().enumerate() {
                for (ch, mut plane) in dst.outer_iter_mut().enumerate() {
                    plane.row_mut(y).assign(&row.column(ch));
                }
            }
        }
    }
}

/// `dst[h, w, c] = src[c, h, w]`, as a fresh standard-layout array.
fn chw_to_hwc<T: Copy>(src: ArrayView3<T>) -> ArrayD<T> {
    let (c, h, w) = src.dim();
    match src.as_slice() {
        Some(s) if !s.is_empty() => {
            let mut flat = vec![s[0]; s.len()];
            transpose(s, c, h * w, &mut flat);
            ArrayD::from_shape_vec(IxDyn(&[h, w, c]), flat).expect("element count matches")
        }
        _ => {
            let hwc = src.permuted_axes([1, 2, 0]);
            hwc.as_standard_layout().into_owned().into_dyn()
        }
    }
}

/// Transposes the row-major `rows x cols` matrix `src` into `dst` (`cols x rows`), eight
/// rows of `src` at a time: each column of such a block is written as eight contiguous
/// elements, and the block is small enough to stay in cache while its columns are scattered.
fn transpose<T: Copy>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    const B: usize = 8;
    debug_assert!(src.len() == rows * cols && dst.len() == rows * cols);
    if rows == 1 || cols == 1 {
        dst.copy_from_slice(src);
        return;
    }
    let full = rows / B * B;
    for r0 in (0..full).step_by(B) {
        let block = &src[r0 * cols..(r0 + B) * cols];
        for c in 0..cols {
            let out: &mut [T; B] = (&mut dst[c * rows + r0..c * rows + r0 + B])
                .try_into()
                .expect("eight elements");
            for (k, o) in out.iter_mut().enumerate() {
                *o = block[k * cols + c];
            }
        }
    }
    for r in full..rows {
        for (c, v) in src[r * cols..(r + 1) * cols].iter().enumerate() {
            dst[c * rows + r] = *v;
        }
    }
}

/// Splits a tract output along its leading batch axis into one tensor per instance, in one
/// copy; with `nchw`, rank-4 NCHW outputs come back HWC.
pub(crate) fn unstack(v: &TValue, nchw: bool) -> Result<Vec<Tensor>, String> {
    macro_rules! take {
        ($t:ty) => {{
            let view = v.to_plain_array_view::<$t>().map_err(|e| e.to_string())?;
            if view.ndim() == 0 {
                return Err("a scalar has no batch axis to split".into());
            }
            view.outer_iter()
                .map(|row| {
                    let row = if nchw && row.ndim() == 3 {
                        chw_to_hwc(row.into_dimensionality::<Ix3>().expect("rank 3"))
                    } else {
                        row.to_owned()
                    };
                    Tensor::from(row)
                })
                .collect()
        }};
    }
    Ok(match v.datum_type() {
        DatumType::F32 => take!(f32),
        DatumType::F64 => take!(f64),
        DatumType::F16 => take!(half::f16),
        DatumType::I8 => take!(i8),
        DatumType::I16 => take!(i16),
        DatumType::I32 => take!(i32),
        DatumType::I64 => take!(i64),
        DatumType::U8 => take!(u8),
        DatumType::U16 => take!(u16),
        DatumType::U32 => take!(u32),
        DatumType::U64 => take!(u64),
        DatumType::Bool => take!(bool),
        other => return Err(format!("unsupported output type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, ShapeBuilder};

    fn ramp(shape: (usize, usize, usize)) -> Array3<f32> {
        let n = shape.0 * shape.1 * shape.2;
        Array3::from_shape_vec(shape, (0..n).map(|v| v as f32).collect()).unwrap()
    }

    #[test]
    fn transpose_matches_ndarray() {
        for (rows, cols) in [(1, 7), (7, 1), (16, 16), (37, 5), (33, 64), (4096, 3)] {
            let src: Vec<u32> = (0..(rows * cols) as u32).collect();
            let mut dst = vec![0; src.len()];
            transpose(&src, rows, cols, &mut dst);
            let want = ndarray::Array2::from_shape_vec((rows, cols), src.clone()).unwrap();
            let want: Vec<u32> = want.t().iter().copied().collect();
            assert_eq!(dst, want, "{rows} x {cols}");
        }
    }

    #[test]
    fn hwc_chw_round_trip() {
        for shape in [(5, 7, 1), (5, 7, 3), (9, 4, 64)] {
            let hwc = ramp(shape);
            let mut chw = Array3::<f32>::zeros((shape.2, shape.0, shape.1));
            hwc_to_chw(hwc.view(), chw.view_mut());
            assert_eq!(chw, hwc.view().permuted_axes([2, 0, 1]));
            assert_eq!(chw_to_hwc(chw.view()), hwc.clone().into_dyn());
            // Views that are not contiguous take the slow path to the same answer.
            let fortran_hwc = {
                let mut a = Array3::<f32>::zeros(shape.f());
                a.assign(&hwc);
                a
            };
            let mut chw2 = Array3::<f32>::zeros((shape.2, shape.0, shape.1));
            hwc_to_chw(fortran_hwc.view(), chw2.view_mut());
            assert_eq!(chw2, chw);
            let chw_f = {
                let mut a = Array3::<f32>::zeros((shape.2, shape.0, shape.1).f());
                a.assign(&chw);
                a
            };
            assert_eq!(chw_to_hwc(chw_f.view()), hwc.clone().into_dyn());
        }
    }

    #[test]
    fn stack_and_unstack_invert_each_other() {
        let a = Tensor::F32(ramp((4, 3, 2)).into_dyn());
        let b = Tensor::F32(ramp((4, 3, 2)).mapv(|v| -v).into_dyn());
        for nchw in [false, true] {
            let v = stack(&[&a, &b], nchw).unwrap();
            let want: &[usize] = if nchw { &[2, 2, 4, 3] } else { &[2, 4, 3, 2] };
            assert_eq!(v.shape(), want);
            // NCHW in means NCHW out: what tract returns comes back HWC.
            let back = unstack(&v, nchw).unwrap();
            assert_eq!(back, vec![a.clone(), b.clone()]);
        }
        assert!(stack(
            &[&a, &Tensor::F64(ndarray::ArrayD::zeros(vec![4, 3, 2]))],
            false
        )
        .is_err());
    }
}
