//! `ND_ARRAYS`: each instance is one bare nested list, channel-first (`[band][row][col]`), as
//! numpy's `tolist()` of a `(C, H, W)` array would give; names are not sent. Bands of shape
//! `(h, w)` give one channel, `(h, w, d)` give `d`, in the instance's band order. Answers are
//! bare nested lists too; a rank-3 answer `(C, H, W)` is returned channel-last `(H, W, C)`.

use ndarray::{ArrayD, IxDyn};

use super::{decode_rows_body, single_spec, Instance, OutputSpec, Slot};
use crate::json::{write_nested, JsonValue, Reader, Style};
use crate::payload::raw_json::read_json_value;
use crate::tensor::with_array;
use crate::{Error, Result, Tensor};

/// The format's name in errors.
pub const FORMAT: &str = "ND_ARRAYS";

/// The `(h, w)` plane count of each band: 1 for `(h, w)`, `d` for `(h, w, d)`.
fn planes(t: &Tensor, index: usize, name: &str) -> Result<(usize, usize, usize)> {
    match *t.shape() {
        [h, w] => Ok((h, w, 1)),
        [h, w, d] => Ok((h, w, d)),
        ref other => Err(Error::payload(
            FORMAT,
            format!(
                "instance {index}, band {name:?}: shape {other:?} is not (h, w) or (h, w, depth)"
            ),
        )),
    }
}

fn write_planes<T: JsonValue + Clone>(
    a: &ArrayD<T>,
    h: usize,
    w: usize,
    d: usize,
    out: &mut Vec<u8>,
) -> Result<()> {
    let view = a
        .view()
        .into_shape_with_order(IxDyn(&[h, w, d]))
        .map_err(|e| Error::payload(FORMAT, format!("cannot view band as (h, w, d): {e}")))?;
    let chw = view.permuted_axes(IxDyn(&[2, 0, 1]));
    // Each channel is written as its own [row][col] list inside the outer channel list.
    for c in 0..d {
        if c > 0 {
            out.push(b',');
        }
        write_nested(chw.index_axis(ndarray::Axis(0), c), out, Style::PLAIN)?;
    }
    Ok(())
}

/// Appends `{"instances": [[[[...]]], ...]}`: each instance's bands stacked channel-first.
pub fn encode_request(instances: &[Instance], out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(b"{\"instances\":[");
    for (i, inst) in instances.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        let mut size = None;
        for (j, (name, t)) in inst.iter().enumerate() {
            let (h, w, d) = planes(t, i, name)?;
            if *size.get_or_insert((h, w)) != (h, w) {
                return Err(Error::payload(
                    FORMAT,
                    format!("instance {i}, band {name:?} is {h}x{w} but earlier bands are {:?}: channel-first stacking needs one size", size.unwrap_or_default()),
                ));
            }
            if j > 0 {
                out.push(b',');
            }
            with_array!(t, a => write_planes(a, h, w, d, out))?;
        }
        out.push(b']');
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// Appends `{"predictions": [...]}`: each prediction's single tensor written channel-first
/// when it is `(h, w, c)`, as is otherwise.
pub fn encode_response(predictions: &[Instance], out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(b"{\"predictions\":[");
    for (i, p) in predictions.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let (_, t) = p
            .iter()
            .next()
            .ok_or_else(|| Error::payload(FORMAT, format!("prediction {i} holds no tensor")))?;
        if let [h, w, d] = *t.shape() {
            out.push(b'[');
            with_array!(t, a => write_planes(a, h, w, d, out))?;
            out.push(b']');
        } else {
            crate::json::write_tensor(t, out, Style::PLAIN)?;
        }
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// Decodes `{"predictions": [...]}` into one tensor per prediction, named after the single
/// declared output; `(C, H, W)` answers become `(H, W, C)`.
pub fn decode_response(body: &[u8], output: &OutputSpec) -> Result<Vec<Instance>> {
    decode_channel_first(body, "predictions", output)
}

/// Decodes `{"instances": [...]}` (the server side) into one tensor per instance, named
/// after the single declared input; `(C, H, W)` instances become `(H, W, C)`.
pub fn decode_request(body: &[u8], input: &OutputSpec) -> Result<Vec<Instance>> {
    decode_channel_first(body, "instances", input)
}

fn decode_channel_first(body: &[u8], key: &str, spec: &OutputSpec) -> Result<Vec<Instance>> {
    let specs = std::slice::from_ref(spec);
    let (name, _) = single_spec(specs, FORMAT, key)?;
    let rows = decode_rows_body(
        body,
        FORMAT,
        key,
        specs,
        &|_| Ok(true),
        &mut |r: &mut Reader<'_>, slot: Slot<'_>| {
            let t = read_json_value(r, slot, FORMAT)?;
            Ok(match *t.shape() {
                [_, _, _] => t.permute(&[1, 2, 0])?,
                _ => t,
            })
        },
    )?;
    debug_assert!(rows.iter().all(|r| r.get(&name).is_some()));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataType;

    #[test]
    fn bands_are_stacked_channel_first() {
        // Two bands 1x2: a = [[1, 2]], b (depth 2) = [[[3, 4], [5, 6]]].
        let a = Tensor::from_vec(&[1, 2], vec![1i32, 2]).unwrap();
        let b = Tensor::from_vec(&[1, 2, 2], vec![3i32, 4, 5, 6]).unwrap();
        let mut body = Vec::new();
        encode_request(&[Instance::new().with("a", a).with("b", b)], &mut body).unwrap();
        assert_eq!(body, b"{\"instances\":[[[[1,2]],[[3,5]],[[4,6]]]]}");
        let back = decode_request(&body, &OutputSpec::new("x", DataType::Int32)).unwrap();
        let hwc = Tensor::from_vec(&[1, 2, 3], vec![1i32, 3, 4, 2, 5, 6]).unwrap();
        assert_eq!(back, vec![Instance::new().with("x", hwc)]);
    }

    #[test]
    fn answers_come_back_channel_last() {
        let spec = OutputSpec::new("p", DataType::Float32);
        let rows = decode_response(b"{\"predictions\":[[[[1,2]],[[3,4]]]]}", &spec).unwrap();
        let p = rows[0].get("p").unwrap();
        assert_eq!(p.shape(), &[1, 2, 2]);
        assert_eq!(
            p.array::<f32>()
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![1.0, 3.0, 2.0, 4.0]
        );
        let mut again = Vec::new();
        encode_response(&rows, &mut again).unwrap();
        assert_eq!(again, b"{\"predictions\":[[[[1.0,2.0]],[[3.0,4.0]]]]}");
    }
}
