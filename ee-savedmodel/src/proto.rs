//! Messages generated from `proto/` at build time.

/// Containers decoded and re-encoded with every field (sub-messages kept as raw bytes).
#[allow(missing_docs, clippy::all)]
pub(crate) mod frame {
    include!(concat!(env!("OUT_DIR"), "/ee_savedmodel.frame.rs"));
}

/// Graph messages read from the model or built for the glue.
#[allow(missing_docs, clippy::all)]
pub(crate) mod tf {
    include!(concat!(env!("OUT_DIR"), "/ee_savedmodel.tf.rs"));
}
