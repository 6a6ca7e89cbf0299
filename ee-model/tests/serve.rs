//! `ee-model predict` against `ee-model serve`: every transport gives the file the local
//! predictor gives, byte for byte; the real Python clients (TensorFlow Serving's gRPC stub
//! with `tf.make_tensor_proto`, `requests` with `tf.io.serialize_tensor`, KServe v2 JSON) get
//! correct answers from the `ee-model serve` process; SIGTERM lets the request in flight
//! finish; and a bounded load of many retrying clients against a small admission limit sees
//! 429s, loses no request and keeps the node's memory bounded.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{make_input, models, scratch};
use ee_model::{Layout, LocalModel, Model, ModelSpec, PredictOptions};
use ee_predict_client::{AuthConfig, ClientConfig, Endpoint, PredictClient, PredictorConfig};
use ee_serve::{Node, ServeConfig};
use ee_tensor_proto::{DataType, Instance, OutputSpec, PayloadFormat, Tensor};

const BANDS: &str = r#""inputBands": {"input": ["B1", "B2", "B3"]}, "inputTileSize": [32, 32], "inputOverlapSize": [4, 4],
    "outputBands": {"output": {"type": "float", "dimensions": 1}}, "maxPayloadBytes": 60000"#;

async fn predict(spec: &str, input: &Path, output: &Path) {
    let spec = ModelSpec::from_json(spec).unwrap();
    Model::new(spec)
        .unwrap()
        .predict_image(&[input.to_path_buf()], output, &PredictOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_against_serve_gives_the_local_file_over_every_transport() {
    let input = scratch("serve_in.tif");
    make_input(&input, 150, 110, Some((20, 30, 60, 50)));
    let local = scratch("serve_local.tif");
    let conv = models().join("conv_r2.onnx");
    predict(
        &format!(
            r#"{{"predictor": {{"type": "local", "path": "{}"}}, {BANDS}}}"#,
            conv.display()
        ),
        &input,
        &local,
    )
    .await;
    let node = Node::start(
        LocalModel::load(&conv, Layout::Nhwc).unwrap(),
        ServeConfig {
            model_name: "conv".into(),
            http: Some("127.0.0.1:0".parse().unwrap()),
            grpc: Some("127.0.0.1:0".parse().unwrap()),
            ..ServeConfig::default()
        },
    )
    .await
    .unwrap();
    let (http, grpc) = (node.http_addr().unwrap(), node.grpc_addr().unwrap());
    let predictors = [
        format!(
            r#"{{"type": "aiPlatform", "projectId": "p", "modelName": "conv", "version": "v1", "baseUrl": "http://{http}"}}"#
        ),
        format!(
            r#"{{"type": "vertexAi", "endpoint": "projects/p/locations/us-central1/endpoints/77", "baseUrl": "http://{http}"}}"#
        ),
        format!(r#"{{"type": "tfServing", "url": "http://{http}", "model": "conv"}}"#),
        format!(
            r#"{{"type": "tfServing", "url": "http://{grpc}", "model": "conv", "grpc": true}}"#
        ),
        format!(r#"{{"type": "kserveV2", "url": "http://{http}", "model": "conv"}}"#),
        format!(r#"{{"type": "kserveV2", "url": "http://{grpc}", "model": "conv", "grpc": true}}"#),
    ];
    let formats = [
        None,
        Some("RAW_JSON"),
        None,
        Some("GRPC_SERIALIZED_TF_TENSORS"),
        Some("KSERVE_V2_JSON"),
        None,
    ];
    let local_bytes = std::fs::read(&local).unwrap();
    for (i, predictor) in predictors.iter().enumerate() {
        let format = formats[i].map_or(String::new(), |f| format!(r#""payloadFormat": "{f}","#));
        let out = scratch(&format!("serve_out_{i}.tif"));
        predict(
            &format!(r#"{{"predictor": {predictor}, {format} {BANDS}}}"#),
            &input,
            &out,
        )
        .await;
        assert!(
            std::fs::read(&out).unwrap() == local_bytes,
            "{predictor} {format}: the served prediction differs from the local one"
        );
    }
    let stats = node.shutdown().await.unwrap();
    assert!(stats.answered >= 6 && stats.largest_batch > 1, "{stats}");
}

/// `ee-model serve` as a child process; killed when dropped.
struct Served {
    child: Child,
    http: SocketAddr,
    grpc: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(model: &Path, name: &str, extra: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ee-model"))
        .arg("serve")
        .arg("--model")
        .arg(model)
        .args(["--name", name, "--http", "0", "--grpc", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut http, mut grpc) = (None, None);
    while http.is_none() || grpc.is_none() {
        let line = lines
            .next()
            .expect("ee-model serve printed its addresses")
            .unwrap();
        if let Some(rest) = line.strip_prefix("http: http://") {
            http = rest.split_whitespace().next().map(|a| a.parse().unwrap());
        } else if let Some(rest) = line.strip_prefix("grpc: ") {
            grpc = rest.split_whitespace().next().map(|a| a.parse().unwrap());
        }
    }
    // Keep draining stdout so the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        http: http.unwrap(),
        grpc: grpc.unwrap(),
    }
}

#[test]
fn python_clients_get_correct_answers_from_ee_model_serve() {
    let Some(python) = common::interop_python() else {
        return;
    };
    let served = serve(&models().join("conv_r2.onnx"), "conv", &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve_clients.py");
    let out = Command::new(python)
        .arg(script)
        .arg(served.http.to_string())
        .arg(served.grpc.to_string())
        .arg(models().join("conv_r2.onnx"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "tf-serving-grpc ok",
        "tf-serving-rest-row ok",
        "tf-serving-rest-columnar ok",
        "ai-platform-serialized ok",
        "vertex-serialized ok",
        "kserve-v2-json ok",
        "metadata ok",
        "bad-input ok",
    ] {
        assert!(stdout.contains(check), "missing {check:?} in:\n{stdout}");
    }
    // Google's own google-cloud-aiplatform client on the Vertex route.
    if stdout.contains("google-aiplatform missing") {
        assert!(
            std::env::var_os("EE_REQUIRE_INTEROP").is_none(),
            "EE_REQUIRE_INTEROP is set but the interop Python lacks google-cloud-aiplatform:\n{stdout}"
        );
        eprintln!("skipping the google-cloud-aiplatform checks: not installed");
        return;
    }
    for check in [
        "google-aiplatform-predict ok",
        "google-aiplatform-serialized ok",
        "google-aiplatform-raw-predict ok",
        "google-aiplatform-errors ok",
    ] {
        assert!(stdout.contains(check), "missing {check:?} in:\n{stdout}");
    }
}

#[cfg(unix)]
#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let mut served = serve(&models().join("identity.onnx"), "ident", &[]);
    let t = Tensor::from_vec(&[2, 2, 1], vec![1f32, 2.0, 3.0, 4.0]).unwrap();
    let mut body = Vec::new();
    ee_tensor_proto::payload::serialized_tf_tensors::encode_request(
        &[Instance::new().with("input", t)],
        &mut body,
    )
    .unwrap();
    let mut s = std::net::TcpStream::connect(served.http).unwrap();
    write!(
        s,
        "POST /v1/projects/p/models/ident:predict HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = served.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        served.child.try_wait().unwrap().is_none(),
        "the node must wait for the request in flight"
    );
    s.write_all(&body[10..]).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let mut status = None;
    for _ in 0..100 {
        status = served.child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(status.expect("the node stops after the request").success());
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_retrying_clients_against_a_small_limit_lose_nothing() {
    let served = serve(
        &models().join("conv_r2.onnx"),
        "conv",
        &[
            "--max-queue",
            "3",
            "--max-concurrency",
            "1",
            "--retry-after",
            "1",
        ],
    );
    let clients = 24;
    let per_client = 4;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let endpoint = Endpoint::TfServing {
            url: format!("http://{}", served.http),
            model: "conv".into(),
            version: None,
            signature: None,
        };
        tasks.push(tokio::spawn(async move {
            let client = PredictClient::new(
                &PredictorConfig {
                    endpoint,
                    base_url: None,
                    format: PayloadFormat::TfServingJson,
                },
                vec![OutputSpec::new("output", DataType::Float32)],
                AuthConfig::None,
                ClientConfig {
                    max_concurrency: 1,
                    initial_concurrency: 1,
                    ..ClientConfig::default()
                },
            )
            .unwrap();
            for r in 0..per_client {
                let seed = (c * per_client + r) as f32;
                let values: Vec<f32> = (0..48 * 48 * 3).map(|i| seed + i as f32 * 1e-3).collect();
                let inst =
                    Instance::new().with("input", Tensor::from_vec(&[48, 48, 3], values).unwrap());
                let answer = client
                    .predict(
                        std::slice::from_ref(&inst),
                        &[format!("client {c} request {r}")],
                    )
                    .await
                    .unwrap();
                assert_eq!(answer[0].get("output").unwrap().shape(), &[48, 48, 2]);
            }
            let m = client.metrics();
            (m.requests_ok, m.retries.get("429").copied().unwrap_or(0))
        }));
    }
    let mut ok = 0;
    let mut overloads = 0;
    for t in tasks {
        let (o, r) = t.await.unwrap();
        ok += o;
        overloads += r;
    }
    assert_eq!(
        ok as usize,
        clients * per_client,
        "every request answered once"
    );
    assert!(
        overloads > 0,
        "24 clients against 3 admissions must see 429s"
    );
    let rss = peak_rss_kib(served.child.id());
    assert!(rss > 0 && rss < 400 * 1024, "node peak RSS {rss} KiB");
}
