//! Compiles the .proto files under `proto/` with protox (pure Rust, no protoc) and prost.
//! With the `grpc` feature, tonic client and server stubs are generated as well.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/tensorflow/core/framework/types.proto",
    "proto/tensorflow/core/framework/tensor_shape.proto",
    "proto/tensorflow/core/framework/tensor.proto",
    "proto/tensorflow/core/example/feature.proto",
    "proto/tensorflow/core/example/example.proto",
    "proto/tensorflow_serving/apis/model.proto",
    "proto/tensorflow_serving/apis/predict.proto",
    "proto/tensorflow_serving/apis/prediction_service.proto",
    "proto/inference/grpc_service.proto",
];

/// Byte fields decoded as `bytes::Bytes`, so large tensor payloads are sliced, not copied.
const BYTES_FIELDS: &[&str] = &[
    ".tensorflow.TensorProto.tensor_content",
    ".inference.ModelInferRequest.raw_input_contents",
    ".inference.ModelInferResponse.raw_output_contents",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    #[cfg(feature = "grpc")]
    {
        let mut builder = tonic_prost_build::configure().out_dir(&out);
        for field in BYTES_FIELDS {
            builder = builder.bytes(field);
        }
        builder.compile_fds(fds)?;
    }
    #[cfg(not(feature = "grpc"))]
    {
        let mut config = prost_build::Config::new();
        config.bytes(BYTES_FIELDS.iter().copied());
        config.out_dir(&out);
        config.compile_fds(fds)?;
    }
    Ok(())
}
