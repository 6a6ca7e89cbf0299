//! Serves the demo water model (`ee-model/demo/water.onnx`) on 127.0.0.1 (a free port), asks
//! for its TF Serving metadata, sends one TF Serving REST `:predict` request with two 2 x 2
//! tiles of four bands (one water, one forest) over HTTP, prints the answer and the node's
//! counters, and shuts the node down gracefully.
//!
//! `cargo run -p ee-serve --example serve_water` (no arguments).

use std::net::SocketAddr;
use std::path::Path;

use ee_runtime::{Layout, LocalModel};
use ee_serve::{Node, ServeConfig};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ee-model/demo/water.onnx");
    let model = LocalModel::load(&path, Layout::Nhwc)?;
    let config = ServeConfig {
        model_name: "water".into(),
        http: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..ServeConfig::default()
    };
    let node = Node::start(model, config).await?;
    let base = format!("http://{}", node.http_addr().ok_or("no HTTP address")?);
    println!("serving {} on {base}", path.display());

    let http = reqwest::Client::new();
    let metadata: Value = http
        .get(format!("{base}/v1/models/water/metadata"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let signature = &metadata["metadata"]["signature_def"]["signature_def"]["serving_default"];
    println!("GET  /v1/models/water/metadata -> serving_default {signature}");

    // Two instances: 2 x 2 tiles of reflectance x 10000 (B2, B3, B4, B8).
    let water = [600, 700, 400, 200];
    let forest = [300, 600, 300, 3800];
    let body = json!({"instances": [
        [[water, water], [water, water]],
        [[forest, forest], [forest, forest]],
    ]});
    println!("POST /v1/models/water:predict {body}");
    let response = http
        .post(format!("{base}/v1/models/water:predict"))
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    println!("-> {status} {answer}");
    if !status.is_success() {
        return Err(format!("the node answered {status}").into());
    }

    // One prediction per instance: the tile's (2, 2, 1) water probability.
    let mean = |tile: &Value| -> Option<f64> {
        let px: Vec<f64> = tile
            .as_array()?
            .iter()
            .flat_map(|row| row.as_array().into_iter().flatten())
            .map(|p| p[0].as_f64())
            .collect::<Option<_>>()?;
        (px.len() == 4).then(|| px.iter().sum::<f64>() / 4.0)
    };
    let predictions = &answer["predictions"];
    let wet = mean(&predictions[0]).ok_or("no 2 x 2 x 1 prediction for the water tile")?;
    let dry = mean(&predictions[1]).ok_or("no 2 x 2 x 1 prediction for the forest tile")?;
    println!("water tile: p(water) = {wet:.3}; forest tile: p(water) = {dry:.3}");
    if !(wet > 0.5 && dry < 0.5) {
        return Err("the model did not tell water from forest".into());
    }

    let stats = node.shutdown().await?;
    println!("shut down: {stats}");
    Ok(())
}
