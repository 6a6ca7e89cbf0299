//! Fuzzing of the SavedModel reader: the `saved_model.pb` fixtures made by TensorFlow (a TF1
//! graph and a Keras 3 export), mutated by proptest (bit flips, truncation, inserted and
//! deleted bytes, forged 8-byte words such as protobuf lengths), plus random bytes, go through
//! the public read paths, `list_bytes` (signatures and placeholders of every meta graph) and
//! `rewrite` (the prepare rewrite of the first signature). Each must return `Ok` or `Err`,
//! never panic, and allocate at most a fixed multiple of the input size plus a constant (a
//! counting global allocator checks it). `TensorMap::parse`, which reads the `--input` and
//! `--output` flags, is fuzzed with arbitrary strings.

use std::path::{Path, PathBuf};

use ee_fuzzkit::{allocated_by, apply, config, mutation, Counting};
use ee_savedmodel::{list_bytes, rewrite, TensorMap};
use proptest::prelude::*;

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Fixture {
    path: PathBuf,
    bytes: Vec<u8>,
    inputs: TensorMap,
    outputs: TensorMap,
}

/// The fixtures with maps naming their first signature's inputs and outputs.
fn fixtures() -> Vec<Fixture> {
    ["tf1", "keras"]
        .iter()
        .map(|name| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name)
                .join("saved_model.pb");
            let bytes = std::fs::read(&path).unwrap();
            let listing = list_bytes(&path, &bytes).unwrap();
            let sig = &listing.meta_graphs[0].signatures[0];
            let names = |flag: &'static str, entries: &[ee_savedmodel::TensorEntry], band: &str| {
                let pairs: Vec<(String, String)> = entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (e.tensor.clone(), format!("{band}{i}")))
                    .collect();
                TensorMap::from_pairs(flag, pairs).unwrap()
            };
            let (inputs, outputs) = (
                names("--input", &sig.inputs, "in"),
                names("--output", &sig.outputs, "out"),
            );
            // The unmutated fixture is rewritten: the fuzzing starts from a working case.
            rewrite(&path, &bytes, &inputs, &outputs, "serve").unwrap();
            Fixture {
                path,
                bytes,
                inputs,
                outputs,
            }
        })
        .collect()
}

fn check(f: &Fixture, bytes: &[u8]) {
    let (_, used) = allocated_by(|| list_bytes(&f.path, bytes).map(|l| l.meta_graphs.len()));
    let limit = 16 * bytes.len() + (1 << 20);
    assert!(
        used <= limit,
        "listing {} bytes allocated {used}",
        bytes.len()
    );
    let (_, used) = allocated_by(|| {
        rewrite(&f.path, bytes, &f.inputs, &f.outputs, "serve").map(|(pb, _)| pb.len())
    });
    assert!(
        used <= limit,
        "rewriting {} bytes allocated {used}",
        bytes.len()
    );
}

fn cases() -> impl Strategy<Value = (usize, Vec<u8>)> {
    let seeds: Vec<Vec<u8>> = fixtures().into_iter().map(|f| f.bytes).collect();
    let n = seeds.len();
    prop_oneof![
        7 => (0..n, prop::collection::vec(mutation(), 1..6))
            .prop_map(move |(s, m)| (s, apply(seeds[s].clone(), &m))),
        1 => (0..n, prop::collection::vec(any::<u8>(), 0..512)),
    ]
}

proptest! {
    #![proptest_config(config(1500))]
    #[test]
    fn saved_model_reading_never_panics_nor_balloons((which, bytes) in cases()) {
        thread_local! {
            static FIXTURES: Vec<Fixture> = fixtures();
        }
        FIXTURES.with(|f| check(&f[which], &bytes));
    }

    #[test]
    fn tensor_map_parsing_never_panics(spec in prop_oneof![
        ".{0,64}",
        r#"\{"[a-z_:0-9]{0,8}": ?"[A-Za-z0-9]{0,4}"(, ?"[a-z:0-9]{0,8}": ?"[A-Z0-9]{0,3}"){0,3}\}"#,
        "[a-z_:0-9,]{0,32}",
    ]) {
        let _ = TensorMap::parse("--input", &spec);
    }
}

#[test]
fn forged_lengths_fail_fast_and_small() {
    // A SavedModel message whose first field (meta_graphs, tag 2, wire type 2) claims 2^60
    // bytes, then the same length forged into every position of a real fixture's head.
    let mut forged = vec![0x12];
    let mut len = 1u64 << 60;
    while len >= 0x80 {
        forged.push((len as u8) | 0x80);
        len >>= 7;
    }
    forged.push(len as u8);
    forged.extend_from_slice(b"short");
    let fixtures = fixtures();
    let start = std::time::Instant::now();
    check(&fixtures[0], &forged);
    for f in &fixtures {
        for at in 0..64.min(f.bytes.len()) {
            let mut b = f.bytes.clone();
            let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
            for (k, v) in huge.iter().enumerate() {
                if let Some(x) = b.get_mut(at + k) {
                    *x = *v;
                }
            }
            check(f, &b);
        }
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}
