//! A tour of the wire codec on one 256 x 256 x 4 tile: every HTTP payload format encoded,
//! decoded back and checked bit for bit, with body sizes and encode speed, and a gzip
//! TFRecord of tf.train.Example patches written and read back.
//!
//! Run with `cargo run --release -p ee-tensor-proto --example payload_tour [OUT_DIR]` (OUT_DIR
//! defaults to a folder in the system temp directory; `--release` for meaningful speeds).

use std::path::PathBuf;
use std::time::Instant;

use ee_tensor_proto::example::{example, float_feature};
use ee_tensor_proto::payload::{kserve_v2, nd_arrays, raw_json, serialized_tf_tensors, tf_serving};
use ee_tensor_proto::tfrecord::{open_reader, Compression, TfRecordWriter};
use ee_tensor_proto::{DataType, Instance, OutputSpec, Tensor};
use prost::Message;

fn tile() -> Tensor {
    // A smooth synthetic "scene": four bands of gentle gradients and ripples.
    let (h, w, d) = (256usize, 256usize, 4usize);
    let mut v = Vec::with_capacity(h * w * d);
    for y in 0..h {
        for x in 0..w {
            for b in 0..d {
                let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
                v.push(
                    0.1 * b as f32
                        + 0.5 * (fx * 6.0 + b as f32).sin() * (fy * 4.0).cos()
                        + 0.3 * fy,
                );
            }
        }
    }
    Tensor::from_vec(&[h, w, d], v).expect("shape matches")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ee-tensor-proto-payload-tour"));
    std::fs::create_dir_all(&out_dir)?;
    let t = tile();
    let raw_mb = t.len() as f64 * 4.0 / 1e6;
    let rows = vec![Instance::new().with("B1", t.clone())];
    let spec = [OutputSpec::new("B1", DataType::Float32)];
    println!("tile: 256 x 256 x 4 float32 = {raw_mb:.2} MB of pixels\n");
    println!(
        "{:<24} {:>12} {:>10} {:>12}",
        "payload format", "body bytes", "x raw", "encode MB/s"
    );

    type Check<'a> = Box<dyn Fn(&[u8], Option<usize>) -> Result<bool, ee_tensor_proto::Error> + 'a>;
    type Encode<'a> =
        Box<dyn Fn(&mut Vec<u8>) -> Result<Option<usize>, ee_tensor_proto::Error> + 'a>;
    let formats: Vec<(&str, Encode, Check)> = vec![
        (
            "SERIALIZED_TF_TENSORS",
            Box::new(|b| serialized_tf_tensors::encode_request(&rows, b).map(|_| None)),
            Box::new(|b, _| Ok(serialized_tf_tensors::decode_request(b, &[])?[0].bit_eq(&rows[0]))),
        ),
        (
            "RAW_JSON",
            Box::new(|b| raw_json::encode_request(&rows, b).map(|_| None)),
            Box::new(|b, _| Ok(raw_json::decode_request(b, &spec)?[0].bit_eq(&rows[0]))),
        ),
        (
            "TF_SERVING_JSON (row)",
            Box::new(|b| {
                tf_serving::encode_request(&rows, tf_serving::Layout::Row, None, b).map(|_| None)
            }),
            Box::new(
                |b, _| Ok(tf_serving::decode_request(b, &spec)?.instances[0].bit_eq(&rows[0])),
            ),
        ),
        (
            "KSERVE_V2_JSON",
            Box::new(|b| kserve_v2::encode_request(&Instance::stack(&rows)?, &[], false, b)),
            Box::new(|b, h| {
                Ok(kserve_v2::decode_request(b, h)?
                    .inputs
                    .bit_eq(&Instance::stack(&rows)?))
            }),
        ),
        (
            "KSERVE_V2_BINARY",
            Box::new(|b| kserve_v2::encode_request(&Instance::stack(&rows)?, &[], true, b)),
            Box::new(|b, h| {
                Ok(kserve_v2::decode_request(b, h)?
                    .inputs
                    .bit_eq(&Instance::stack(&rows)?))
            }),
        ),
        (
            "ND_ARRAYS (answer)",
            Box::new(|b| nd_arrays::encode_response(&rows, b).map(|_| None)),
            Box::new(|b, _| Ok(nd_arrays::decode_response(b, &spec[0])?[0].bit_eq(&rows[0]))),
        ),
    ];
    let mut body = Vec::new();
    for (name, encode, check) in &formats {
        body.clear();
        let start = Instant::now();
        let header = encode(&mut body)?;
        let secs = start.elapsed().as_secs_f64();
        if !check(&body, header)? {
            return Err(format!("{name}: decoding did not give the tile back").into());
        }
        println!(
            "{name:<24} {:>12} {:>10.2} {:>12.0}",
            body.len(),
            body.len() as f64 / (raw_mb * 1e6),
            raw_mb / secs
        );
    }

    // Earth Engine-style training patches: one Example per 32 x 32 patch, one float_list per band.
    let path = out_dir.join("patches.tfrecord.gz");
    let mut writer = TfRecordWriter::new(std::fs::File::create(&path)?, Compression::Gzip);
    let a = t.array::<f32>().expect("float tile");
    for py in 0..8 {
        for px in 0..8 {
            let bands = (0..4).map(|b| {
                let patch = a.slice(ndarray::s![
                    py * 32..(py + 1) * 32,
                    px * 32..(px + 1) * 32,
                    b
                ]);
                (
                    format!("B{}", b + 1),
                    float_feature(patch.iter().copied().collect::<Vec<_>>()),
                )
            });
            writer.write_record(&example(bands).encode_to_vec())?;
        }
    }
    writer.finish()?;
    let (reader, _) = open_reader(std::fs::File::open(&path)?)?;
    let count = reader
        .map(|r| r.map(|_| ()))
        .collect::<Result<Vec<_>, _>>()?
        .len();
    println!(
        "\nwrote {count} tf.train.Example patches (32 x 32 x 4) to {}",
        path.display()
    );
    println!("every payload decoded back to the identical tile; the TFRecord read back with both CRCs checked");
    Ok(())
}
