//! Compiles the .proto files under `proto/` with protox (pure Rust, no protoc) and prost.
//! Maps are `BTreeMap`s so the messages prepare writes are the same bytes on every run.

use std::path::PathBuf;

const PROTOS: &[&str] = &["proto/saved_model.proto", "proto/graph.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.btree_map(["."]);
    config.out_dir(&out);
    config.compile_fds(fds)?;
    Ok(())
}
