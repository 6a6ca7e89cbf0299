//! `--input` / `--output` specifications: a comma list of names, or a JSON object mapping a
//! graph tensor (or signature key) to the name Earth Engine will use for it.

use crate::error::{Error, Result};

/// One entry of a specification: a tensor (or signature key, or node name) and the band or
/// property name it gets in the prepared model's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorMapping {
    /// What the user named: `serving_default_x:0`, `x` (a signature key) or `x` (a node).
    pub tensor: String,
    /// The name in the prepared signature, without any trailing `:index`.
    pub name: String,
}

/// An ordered `--input` or `--output` specification.
///
/// ```
/// use ee_savedmodel::TensorMap;
///
/// let list = TensorMap::parse("--input", "serving_default_x:0, mask")?;
/// assert_eq!(list.entries()[0].name, "serving_default_x");
/// let map = TensorMap::parse("--output", r#"{"StatefulPartitionedCall_1:0": "water"}"#)?;
/// assert_eq!(map.entries()[0].tensor, "StatefulPartitionedCall_1:0");
/// assert_eq!(map.entries()[0].name, "water");
/// # Ok::<(), ee_savedmodel::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorMap {
    entries: Vec<TensorMapping>,
}

/// Earth Engine's `_strip_index`: `name:0` becomes `name`; names without a colon stay.
pub(crate) fn strip_index(name: &str) -> &str {
    match name.rfind(':') {
        Some(i) => &name[..i],
        None => name,
    }
}

impl TensorMap {
    /// Parses `spec` as given to `flag` (used in error messages): a JSON object
    /// `{"tensor": "name", ...}` (order kept) or a comma list `a:0,b` where each tensor maps to
    /// itself. Names lose any trailing `:index` as Earth Engine's do. Empty entries, non-string
    /// values and repeated tensors or names are errors.
    pub fn parse(flag: &'static str, spec: &str) -> Result<Self> {
        let err = |message: String| Error::Spec {
            flag,
            spec: spec.to_string(),
            message,
        };
        let text = spec.trim();
        let mut pairs = Vec::new();
        if text.starts_with('{') {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
            let object = value
                .as_object()
                .ok_or_else(|| err("expected a JSON object".to_string()))?;
            for (k, v) in object {
                let v = v.as_str().ok_or_else(|| {
                    err(format!("the value for {k:?} must be a string, found {v}"))
                })?;
                pairs.push((k.trim().to_string(), v.trim().to_string()));
            }
        } else {
            for item in text.split(',') {
                let item = item.trim();
                pairs.push((item.to_string(), item.to_string()));
            }
        }
        if pairs.is_empty() {
            return Err(err("names no tensors".to_string()));
        }
        let mut entries: Vec<TensorMapping> = Vec::with_capacity(pairs.len());
        for (tensor, name) in pairs {
            if tensor.is_empty() {
                return Err(err("has an empty tensor name".to_string()));
            }
            let name = strip_index(&name).to_string();
            if name.is_empty() {
                return Err(err(format!("maps {tensor:?} to an empty name")));
            }
            if entries.iter().any(|e| e.tensor == tensor) {
                return Err(err(format!("names {tensor:?} twice")));
            }
            if entries.iter().any(|e| e.name == name) {
                return Err(err(format!("uses the name {name:?} twice")));
            }
            entries.push(TensorMapping { tensor, name });
        }
        Ok(TensorMap { entries })
    }

    /// Builds a map from `(tensor, name)` pairs, checked as [`TensorMap::parse`] checks them.
    pub fn from_pairs<T: AsRef<str>, N: AsRef<str>>(
        flag: &'static str,
        pairs: impl IntoIterator<Item = (T, N)>,
    ) -> Result<Self> {
        let object: serde_json::Map<String, serde_json::Value> = pairs
            .into_iter()
            .map(|(t, n)| (t.as_ref().to_string(), n.as_ref().into()))
            .collect();
        TensorMap::parse(flag, &serde_json::Value::Object(object).to_string())
    }

    /// The entries, in the order given.
    pub fn entries(&self) -> &[TensorMapping] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_lists_map_each_tensor_to_itself_without_its_index() {
        let m = TensorMap::parse("--input", " a:0 ,b,scope/c:1").unwrap();
        let got: Vec<(&str, &str)> = m
            .entries()
            .iter()
            .map(|e| (e.tensor.as_str(), e.name.as_str()))
            .collect();
        assert_eq!(got, [("a:0", "a"), ("b", "b"), ("scope/c:1", "scope/c")]);
    }

    #[test]
    fn json_maps_keep_their_order_and_strip_indexes_from_names() {
        let m = TensorMap::parse("--output", r#"{"z:0": "out:0", "a:1": "B1"}"#).unwrap();
        assert_eq!(
            m.entries(),
            [
                TensorMapping {
                    tensor: "z:0".into(),
                    name: "out".into()
                },
                TensorMapping {
                    tensor: "a:1".into(),
                    name: "B1".into()
                },
            ]
        );
    }

    #[test]
    fn bad_specs_are_errors_naming_flag_and_problem() {
        for (spec, needle) in [
            ("", "empty tensor name"),
            ("a,,b", "empty tensor name"),
            ("{\"a\": 1}", "must be a string"),
            ("{\"a\": ", "not valid JSON"),
            ("{}", "names no tensors"),
            ("a:0,a:0", "twice"),
            ("{\"a:0\": \"x\", \"b:0\": \"x:0\"}", "name \"x\" twice"),
            ("{\"a:0\": \":0\"}", "empty name"),
        ] {
            let e = TensorMap::parse("--input", spec).unwrap_err().to_string();
            assert!(e.starts_with("--input"), "{spec}: {e}");
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn a_json_array_is_not_a_map() {
        // `[...]` does not start with `{`, so it is read as one (odd) comma-list entry; it
        // cannot name a tensor and fails later as a missing input. Objects are the JSON form.
        let m = TensorMap::parse("--input", "[\"a\"]").unwrap();
        assert_eq!(m.entries()[0].tensor, "[\"a\"]");
    }

    #[test]
    fn from_pairs_checks_like_parse() {
        let m = TensorMap::from_pairs("--input", [("x:0", "B")]).unwrap();
        assert_eq!(m.entries()[0].name, "B");
        assert!(TensorMap::from_pairs("--input", [("x:0", "B"), ("y:0", "B")]).is_err());
    }
}
