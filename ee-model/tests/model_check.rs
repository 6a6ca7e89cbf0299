//! Fail before the first tile: against a server that describes its model (`ee-model serve`'s
//! KServe v2 and TF Serving metadata routes), a job that would send the wrong dtype is refused
//! before any tile is read or any prediction requested, naming the input, both dtypes and the
//! `inputTypeOverride` that fixes it; with that override the same job runs.

mod common;

use std::path::Path;

use common::{create_tiff, models, scratch};
use ee_model::{Layout, LocalModel, Model, ModelSpec, PredictOptions};
use ee_serve::{Node, ServeConfig};
use gdal::raster::Buffer;

/// A three-band Byte raster.
fn byte_input(path: &Path, w: usize, h: usize) {
    let ds = create_tiff::<u8>(path, w, h, 3);
    for b in 1..=3 {
        let data: Vec<u8> = (0..w * h).map(|i| ((i * b) % 251) as u8).collect();
        ds.rasterband(b)
            .unwrap()
            .write((0, 0), (w, h), &mut Buffer::new((w, h), data))
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dtype_the_model_does_not_take_is_refused_before_any_tile() {
    let node = Node::start(
        LocalModel::load(models().join("conv_r2.onnx"), Layout::Nhwc).unwrap(),
        ServeConfig {
            model_name: "conv".into(),
            http: Some("127.0.0.1:0".parse().unwrap()),
            ..ServeConfig::default()
        },
    )
    .await
    .unwrap();
    let http = node.http_addr().unwrap();
    let input = scratch("check_byte_in.tif");
    byte_input(&input, 40, 30);
    for (predictor, format) in [
        (
            format!(r#"{{"type": "kserveV2", "url": "http://{http}", "model": "conv"}}"#),
            "KSERVE_V2_JSON",
        ),
        (
            format!(r#"{{"type": "tfServing", "url": "http://{http}", "model": "conv"}}"#),
            "TF_SERVING_JSON",
        ),
    ] {
        let spec = |extra: &str| {
            ModelSpec::from_json(&format!(
                r#"{{"predictor": {predictor}, "payloadFormat": "{format}",
                    "inputBands": {{"input": ["B1", "B2", "B3"]}}, "inputTileSize": [16, 16], "inputOverlapSize": [4, 4],
                    "outputBands": {{"output": {{"type": "float", "dimensions": 1}}}}{extra}}}"#
            ))
            .unwrap()
        };
        let output = scratch(&format!("check_byte_out_{format}.tif"));
        let mut read = 0;
        let progress = std::sync::Arc::new(std::sync::Mutex::new(0usize));
        let p = progress.clone();
        let options = PredictOptions {
            progress: Some(std::sync::Arc::new(move |x: ee_model::Progress| {
                *p.lock().unwrap() = x.done
            })),
            ..Default::default()
        };
        let err = Model::new(spec(""))
            .unwrap()
            .predict_image(std::slice::from_ref(&input), &output, &options)
            .await
            .expect_err("a uint8 input for a float32 model")
            .to_string();
        read += *progress.lock().unwrap();
        assert!(
            err.contains("\"input\"")
                && err.contains("inputTypeOverride")
                && err.contains("float32")
                && err.to_lowercase().contains("uint8"),
            "{format}: {err}"
        );
        assert_eq!(read, 0, "{format}: no tile was predicted");
        assert!(!output.exists());
        assert!(
            !ee_model::journal::journal_path(&output).exists(),
            "{format}: a refused job leaves no journal"
        );
        // The override the message names makes the job run.
        Model::new(spec(r#", "inputTypeOverride": {"input": "float32"}"#))
            .unwrap()
            .predict_image(std::slice::from_ref(&input), &output, &options)
            .await
            .unwrap();
        assert!(output.exists());
    }
}
