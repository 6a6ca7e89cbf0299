//! Base64 as the payloads need it: URL-safe unpadded for writing `SERIALIZED_TF_TENSORS`,
//! standard padded for TF Serving's `{"b64": ...}`, and a tolerant reader that accepts either
//! alphabet, padded or not.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{Config, DecodePaddingMode};
use base64::Engine;

use crate::{Error, Result};

const TOLERANT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_encode_padding(false)
    .with_decode_padding_mode(DecodePaddingMode::Indifferent);

/// URL-safe alphabet (`-_`), written without padding, read with or without.
pub const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, TOLERANT);

/// Standard alphabet (`+/`), read with or without padding.
const STANDARD_TOLERANT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, TOLERANT);

/// Standard alphabet, padded: what TF Serving's `{"b64"}` objects carry.
pub const STANDARD: GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Appends URL-safe unpadded base64 of `data` to `out`.
pub fn encode_url_safe_into(data: &[u8], out: &mut Vec<u8>) {
    append(&URL_SAFE, data, out)
}

/// Appends standard padded base64 of `data` to `out`.
pub fn encode_standard_into(data: &[u8], out: &mut Vec<u8>) {
    append(&STANDARD, data, out)
}

fn append(engine: &GeneralPurpose, data: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let len = base64::encoded_len(data.len(), engine.config().encode_padding())
        .expect("base64 length of an in-memory buffer fits usize");
    out.resize(start + len, 0);
    let written = engine
        .encode_slice(data, &mut out[start..])
        .expect("buffer sized by encoded_len");
    out.truncate(start + written);
}

/// Decodes base64 in either alphabet, padded or not, into `out` (cleared first).
/// `context` names the value in the error.
pub fn decode_any_into(text: &[u8], out: &mut Vec<u8>, context: &dyn Fn() -> String) -> Result<()> {
    out.clear();
    let engine = if text.iter().any(|&b| b == b'+' || b == b'/') {
        &STANDARD_TOLERANT
    } else {
        &URL_SAFE
    };
    engine
        .decode_vec(text, out)
        .map_err(|source| Error::Base64 {
            context: context(),
            source,
        })
}

/// Decodes URL-safe base64 `text` made of whole 4-character groups with no padding into
/// exactly `out` (three bytes per group). `None` when `text` is not such base64 or `out` is
/// not its decoded size: callers use this for the fast path only and take the general one,
/// which reports errors, otherwise.
pub(crate) fn decode_url_safe_groups(text: &[u8], out: &mut [u8]) -> Option<()> {
    if !text.len().is_multiple_of(4) || text.len() / 4 * 3 != out.len() {
        return None;
    }
    match URL_SAFE.decode_slice(text, out) {
        Ok(n) if n == out.len() => Some(()),
        _ => None,
    }
}

/// Decodes the last group of URL-safe base64 (1 to 4 characters, padding allowed) into the
/// front of `out`, returning the byte count; `None` when it is not valid base64.
pub(crate) fn decode_url_safe_last_group(text: &[u8], out: &mut [u8; 3]) -> Option<usize> {
    if text.is_empty() || text.len() > 4 {
        return None;
    }
    URL_SAFE.decode_slice(text, out).ok()
}

/// Decodes base64 in either alphabet, padded or not.
pub fn decode_any(text: &[u8], context: &dyn Fn() -> String) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decode_any_into(text, &mut out, context)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_spelling() {
        let data = [0xfbu8, 0xff, 0xfe, 0x01];
        let ctx = || "test".to_string();
        for text in ["-__-AQ", "-__-AQ==", "+//+AQ==", "+//+AQ"] {
            assert_eq!(decode_any(text.as_bytes(), &ctx).unwrap(), data, "{text}");
        }
        let mut out = Vec::new();
        encode_url_safe_into(&data, &mut out);
        assert_eq!(out, b"-__-AQ");
        out.clear();
        encode_standard_into(&data, &mut out);
        assert_eq!(out, b"+//+AQ==");
        assert!(decode_any(b"a*b", &ctx)
            .unwrap_err()
            .to_string()
            .starts_with("test: invalid base64"));
    }
}
