//! Packing instances into requests under the payload budget. Sizes are those of the
//! actual encoded bodies (computed without encoding where the format allows); the expected answer size (request size x `output_multiplier`) must
//! fit the budget too. A single instance above the budget is an error before anything is
//! sent, naming its size and the budget and suggesting a tile size that would fit.

use std::ops::Range;

use ee_tensor_proto::Instance;

use crate::transport::Transport;
use crate::{Error, Result};

/// Splits `instances` into consecutive batches whose encoded bodies (scaled by
/// `output_multiplier`) stay within `budget` bytes. `labels` name the instances in errors.
pub fn plan_batches(
    transport: &dyn Transport,
    instances: &[Instance],
    labels: &[String],
    budget: usize,
    output_multiplier: f64,
) -> Result<Vec<Range<usize>>> {
    if !(output_multiplier >= 1.0 && output_multiplier.is_finite()) {
        return Err(Error::Config(format!(
            "output_multiplier must be a number >= 1, not {output_multiplier}"
        )));
    }
    let scaled = |bytes: usize| (bytes as f64 * output_multiplier).ceil() as usize;
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut total = 0usize;
    for (i, inst) in instances.iter().enumerate() {
        let alone = transport.encoded_size(std::slice::from_ref(inst))?;
        if scaled(alone) > budget {
            return Err(Error::TileTooLarge {
                tile: labels.get(i).cloned().unwrap_or_else(|| format!("#{i}")),
                bytes: scaled(alone),
                budget,
                suggestion: suggestion(inst, scaled(alone), budget),
            });
        }
        // Each instance's own body is an upper bound of what it adds to a batch's body.
        if i > start && scaled(total + alone) > budget {
            ranges.push(start..i);
            start = i;
            total = 0;
        }
        total += alone;
    }
    if start < instances.len() {
        ranges.push(start..instances.len());
    }
    Ok(ranges)
}

/// "; a tile of about N x N pixels would fit", from the instance's first `(h, w, ...)` tensor.
fn suggestion(inst: &Instance, bytes: usize, budget: usize) -> String {
    let Some((_, t)) = inst.iter().next() else {
        return String::new();
    };
    let shape = t.shape();
    if shape.len() < 2 {
        return String::new();
    }
    let side = shape[0].min(shape[1]) as f64 * (budget as f64 / bytes as f64).sqrt() * 0.95;
    let side = (side as usize / 8) * 8;
    if side == 0 {
        "; even a tiny tile would not fit: raise max_payload_bytes".into()
    } else {
        format!("; a tile of about {side} x {side} pixels (with its overlap) would fit")
    }
}
