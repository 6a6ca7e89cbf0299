//! Messages generated from `proto/`, checked in under `src/gen/` (regenerate with
//! `cargo xtask codegen`; CI fails when they differ).

/// Containers decoded and re-encoded with every field (sub-messages kept as raw bytes).
#[allow(missing_docs, clippy::all)]
pub(crate) mod frame {
    include!("gen/ee_savedmodel.frame.rs");
}

/// Graph messages read from the model or built for the glue.
#[allow(missing_docs, clippy::all)]
pub(crate) mod tf {
    include!("gen/ee_savedmodel.tf.rs");
}
