//! Building and reading `tf.train.Example` features: the three list kinds, by name.

use crate::proto::tensorflow::{
    feature, BytesList, Example, Feature, Features, FloatList, Int64List,
};

/// A `float_list` feature.
pub fn float_feature(values: impl Into<Vec<f32>>) -> Feature {
    Feature {
        kind: Some(feature::Kind::FloatList(FloatList {
            value: values.into(),
        })),
    }
}

/// An `int64_list` feature.
pub fn int64_feature(values: impl Into<Vec<i64>>) -> Feature {
    Feature {
        kind: Some(feature::Kind::Int64List(Int64List {
            value: values.into(),
        })),
    }
}

/// A `bytes_list` feature.
pub fn bytes_feature(values: impl Into<Vec<Vec<u8>>>) -> Feature {
    Feature {
        kind: Some(feature::Kind::BytesList(BytesList {
            value: values.into(),
        })),
    }
}

/// An `Example` with the given named features.
pub fn example<N: Into<String>>(features: impl IntoIterator<Item = (N, Feature)>) -> Example {
    Example {
        features: Some(Features {
            feature: features.into_iter().map(|(n, f)| (n.into(), f)).collect(),
        }),
    }
}

/// The named feature of an example, if present.
pub fn feature<'e>(example: &'e Example, name: &str) -> Option<&'e Feature> {
    example.features.as_ref()?.feature.get(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn example_round_trips() {
        let ex = example([
            ("b1", float_feature(vec![1.0, 2.0])),
            ("label", int64_feature(vec![3])),
        ]);
        let back = Example::decode(&ex.encode_to_vec()[..]).unwrap();
        assert_eq!(back, ex);
        assert!(matches!(
            feature(&back, "label").and_then(|f| f.kind.as_ref()),
            Some(feature::Kind::Int64List(l)) if l.value == vec![3]
        ));
    }
}
