//! Encode and decode throughput of a 256x256x4 f32 tile in every payload format, beside a
//! plain memcpy and memcpy + URL-safe base64 of the same bytes, measured in the same run.
//! With `--bench`, a closing table prints each format's time as a ratio of those baselines.

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine;
use criterion::{criterion_group, Criterion, Throughput};
use ee_benches::{sample_instance, sample_tile};
use ee_tensor_proto::payload::{kserve_v2, nd_arrays, raw_json, serialized_tf_tensors, tf_serving};
use ee_tensor_proto::{tensor_proto, DataType, Instance, OutputSpec};

type Job = Box<dyn FnMut()>;

/// Every measured operation, by name, over the sample tile.
fn jobs() -> Vec<(&'static str, Job)> {
    let tile = sample_tile();
    let raw = tile.to_le_bytes().expect("numeric");
    let rows = vec![sample_instance()];
    let spec = [OutputSpec::new("B1", DataType::Float32)];
    let encoded = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = Vec::new();
        f(&mut b);
        b
    };
    let stt_resp = encoded(&|b| serialized_tf_tensors::encode_response(&rows, b).unwrap());
    let raw_resp = encoded(&|b| raw_json::encode_response(&rows, b).unwrap());
    let nd_resp = encoded(&|b| nd_arrays::encode_response(&rows, b).unwrap());
    let tfs_resp =
        encoded(&|b| tf_serving::encode_response(&rows, tf_serving::Layout::Row, b).unwrap());
    let batched = Instance::stack(&rows).unwrap();
    let mut kb = Vec::new();
    let k_header = kserve_v2::encode_response("m", None, None, &batched, true, &mut kb).unwrap();
    let kj = encoded(&|b| {
        kserve_v2::encode_response("m", None, None, &batched, false, b).unwrap();
    });
    let proto = tensor_proto::serialize(&tile);

    let mut out: Vec<u8> = Vec::with_capacity(8 << 20);
    let mut v: Vec<(&'static str, Job)> = Vec::new();
    macro_rules! job {
        ($name:expr, $body:expr) => {
            v.push(($name, Box::new($body)));
        };
    }
    {
        let raw = raw.clone();
        let mut buf = vec![0u8; raw.len()];
        job!("baseline/memcpy", move || {
            buf.copy_from_slice(black_box(&raw));
            black_box(&buf);
        });
    }
    {
        let raw = raw.clone();
        let mut buf = vec![0u8; raw.len()];
        let mut text = String::with_capacity(raw.len() * 4 / 3 + 4);
        job!("baseline/memcpy+base64", move || {
            buf.copy_from_slice(black_box(&raw));
            text.clear();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&buf, &mut text);
            black_box(&text);
        });
    }
    {
        let tile = tile.clone();
        let mut o = out.clone();
        job!("encode/TensorProto", move || {
            o.clear();
            tensor_proto::write_serialized(black_box(&tile), &mut o);
            black_box(&o);
        });
    }
    job!("decode/TensorProto", move || {
        black_box(tensor_proto::deserialize(black_box(&proto)).unwrap());
    });
    type Encoder = fn(&[Instance], &mut Vec<u8>);
    let encoders: Vec<(&'static str, Encoder)> = vec![
        ("encode/SERIALIZED_TF_TENSORS", |r, o| {
            serialized_tf_tensors::encode_request(r, o).unwrap()
        }),
        ("encode/RAW_JSON", |r, o| {
            raw_json::encode_request(r, o).unwrap()
        }),
        ("encode/ND_ARRAYS", |r, o| {
            nd_arrays::encode_request(r, o).unwrap()
        }),
        ("encode/TF_SERVING_JSON", |r, o| {
            tf_serving::encode_request(r, tf_serving::Layout::Row, None, o).unwrap()
        }),
        ("encode/KSERVE_V2_JSON", |r, o| {
            kserve_v2::encode_request(&Instance::stack(r).unwrap(), &[], false, o).unwrap();
        }),
        ("encode/KSERVE_V2_BINARY", |r, o| {
            kserve_v2::encode_request(&Instance::stack(r).unwrap(), &[], true, o).unwrap();
        }),
    ];
    for (name, f) in encoders {
        let rows = rows.clone();
        let mut o = std::mem::take(&mut out);
        job!(name, move || {
            o.clear();
            f(black_box(&rows), &mut o);
            black_box(&o);
        });
    }
    type Decoder = fn(&[u8], Option<usize>, &[OutputSpec]);
    let decoders: Vec<(&'static str, Vec<u8>, Option<usize>, Decoder)> = vec![
        ("decode/SERIALIZED_TF_TENSORS", stt_resp, None, |b, _, s| {
            black_box(serialized_tf_tensors::decode_response(b, s).unwrap());
        }),
        ("decode/RAW_JSON", raw_resp, None, |b, _, s| {
            black_box(raw_json::decode_response(b, s).unwrap());
        }),
        ("decode/ND_ARRAYS", nd_resp, None, |b, _, s| {
            black_box(nd_arrays::decode_response(b, &s[0]).unwrap());
        }),
        ("decode/TF_SERVING_JSON", tfs_resp, None, |b, _, s| {
            black_box(tf_serving::decode_response(b, s).unwrap());
        }),
        ("decode/KSERVE_V2_JSON", kj, None, |b, h, s| {
            black_box(kserve_v2::decode_response(b, h, s).unwrap());
        }),
        ("decode/KSERVE_V2_BINARY", kb, k_header, |b, h, s| {
            black_box(kserve_v2::decode_response(b, h, s).unwrap());
        }),
    ];
    for (name, body, header, f) in decoders {
        let spec = spec.clone();
        job!(name, move || f(black_box(&body), header, &spec));
    }
    v
}

fn codec(c: &mut Criterion) {
    let bytes = sample_tile().len() as u64 * 4;
    let mut group = c.benchmark_group("tile_256x256x4_f32");
    group.throughput(Throughput::Bytes(bytes));
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);
    for (name, mut job) in jobs() {
        group.bench_function(name, |b| b.iter(&mut job));
    }
    group.finish();
}

/// Median time of `job` over a fixed number of timed batches.
fn median_time(job: &mut Job) -> Duration {
    for _ in 0..3 {
        job();
    }
    let mut samples: Vec<Duration> = (0..15)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..4 {
                job();
            }
            start.elapsed() / 4
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

/// Prints every operation's median time and MB/s, and its ratio to memcpy and to
/// memcpy + base64, all measured in this run.
fn print_ratios() {
    let mb = sample_tile().len() as f64 * 4.0 / 1e6;
    let measured: Vec<(&str, Duration)> = jobs()
        .into_iter()
        .map(|(n, mut j)| (n, median_time(&mut j)))
        .collect();
    let base = |name: &str| {
        measured
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d.as_secs_f64())
            .unwrap_or(f64::NAN)
    };
    let (memcpy, b64) = (base("baseline/memcpy"), base("baseline/memcpy+base64"));
    println!("\n| operation (256x256x4 f32 tile, {mb:.2} MB) | median | MB/s | x memcpy | x memcpy+base64 |");
    println!("|---|---|---|---|---|");
    for (name, d) in &measured {
        let s = d.as_secs_f64();
        println!(
            "| {name} | {:.3} ms | {:.0} | {:.1} | {:.2} |",
            s * 1e3,
            mb / s,
            s / memcpy,
            s / b64
        );
    }
    // Rows for `cargo xtask bench` (target/bench-report.md).
    for (name, d) in &measured {
        let s = d.as_secs_f64();
        println!(
            "bench-report| codec, 256x256x4 f32 tile | {name} | {:.0} MB/s | memcpy {:.0} MB/s, memcpy+base64 {:.0} MB/s | {:.1}x memcpy, {:.2}x memcpy+base64 |",
            mb / s,
            mb / memcpy,
            mb / b64,
            s / memcpy,
            s / b64
        );
    }
    let stt = base("encode/SERIALIZED_TF_TENSORS") / b64;
    println!(
        "\nSERIALIZED_TF_TENSORS encode = {stt:.2}x memcpy+base64 (goal <= 3x): {}",
        if stt <= 3.0 { "met" } else { "NOT met" }
    );
}

criterion_group!(benches, codec);

fn main() {
    // `cargo xtask bench --quick` skips the criterion runs and keeps the closing table.
    if std::env::var_os("EE_BENCH_QUICK").is_none() {
        benches();
        criterion::Criterion::default()
            .configure_from_args()
            .final_summary();
    }
    if std::env::args().any(|a| a == "--bench") {
        print_ratios();
    }
}
