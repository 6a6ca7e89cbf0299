//! A node on 127.0.0.1 port 0 with the identity model (`output` = `input`), driven over
//! every route by real HTTP (reqwest) and gRPC (tonic) clients: answers, metadata, bad
//! input named in a 400 (and the node keeps serving), 413 for oversized bodies, 429 with
//! Retry-After once the admission limit is reached, batching of concurrent requests, and a
//! graceful shutdown that finishes the request in flight.

use std::path::PathBuf;
use std::time::Duration;

use ee_runtime::{Layout, LocalModel};
use ee_serve::{Node, ServeConfig};
use ee_tensor_proto::payload::{kserve_v2, nd_arrays, raw_json, serialized_tf_tensors, tf_serving};
use ee_tensor_proto::proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use ee_tensor_proto::proto::inference::{
    model_infer_request, ModelInferRequest, ServerLiveRequest,
};
use ee_tensor_proto::proto::tensorflow::serving::prediction_service_client::PredictionServiceClient;
use ee_tensor_proto::proto::tensorflow::serving::{ModelSpec, PredictRequest};
use ee_tensor_proto::{tensor_proto, DataType, Instance, OutputSpec, Tensor};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn model(name: &str) -> LocalModel {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ee-model/tests/models")
        .join(name);
    LocalModel::load(path, Layout::Nhwc).unwrap()
}

fn config(max_queue: usize) -> ServeConfig {
    ServeConfig {
        model_name: "ident".into(),
        http: Some("127.0.0.1:0".parse().unwrap()),
        grpc: Some("127.0.0.1:0".parse().unwrap()),
        max_queue,
        max_body_bytes: 1 << 20,
        ..ServeConfig::default()
    }
}

/// A node serving `name` (in ee-model/tests/models) as "ident" that admits `max_queue`
/// requests at a time.
async fn start(name: &str, max_queue: usize) -> Node {
    Node::start(model(name), config(max_queue)).await.unwrap()
}

/// The node's Vertex AI endpoint 7 in us-central1, without the `:verb`.
fn vertex_endpoint(node: &Node) -> String {
    format!(
        "http://{}/v1/projects/p/locations/us-central1/endpoints/7",
        node.http_addr().unwrap()
    )
}

fn tile(id: usize, h: usize, w: usize, c: usize) -> Tensor {
    let values: Vec<f32> = (0..h * w * c)
        .map(|i| id as f32 * 1000.0 + i as f32 * 0.5)
        .collect();
    Tensor::from_vec(&[h, w, c], values).unwrap()
}

/// A TF Serving gRPC PredictRequest for the model `name` with `input` (batched) as "input".
fn predict_request(name: &str, input: &Tensor, output_filter: &[&str]) -> PredictRequest {
    PredictRequest {
        model_spec: Some(ModelSpec {
            name: name.into(),
            ..Default::default()
        }),
        inputs: [("input".to_string(), tensor_proto::to_proto(input))]
            .into_iter()
            .collect(),
        output_filter: output_filter.iter().map(|o| o.to_string()).collect(),
    }
}

fn out_spec() -> Vec<OutputSpec> {
    vec![OutputSpec::new("output", DataType::Float32)]
}

/// A SERIALIZED_TF_TENSORS request body of one instance with `t` as "input".
fn one_tile_body(t: Tensor) -> Vec<u8> {
    let mut body = Vec::new();
    serialized_tf_tensors::encode_request(&[Instance::new().with("input", t)], &mut body).unwrap();
    body
}

async fn post(url: &str, body: Vec<u8>) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = reqwest::Client::new()
        .post(url)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

/// The message of a TF Serving / KServe error, `{"error": "..."}`.
fn error_of(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not {{\"error\": \"...\"}}: {v}"))
        .to_string()
}

/// Code, status name and message of a Google error on the AI Platform / Vertex routes,
/// `{"error": {"code": 400, "message": "...", "status": "INVALID_ARGUMENT"}}`.
fn google_error_of(body: &[u8]) -> (u64, String, String) {
    let v: Value = serde_json::from_slice(body).unwrap();
    let e = &v["error"];
    let text = |k: &str| {
        e[k].as_str()
            .unwrap_or_else(|| panic!("no error.{k} string in {v}"))
            .to_string()
    };
    let code = e["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("no error.code number in {v}"));
    (code, text("status"), text("message"))
}

/// `{"instances": [list, ...]}` with each tile written as a bare nested list, axes as they are.
fn bare_lists(tiles: &[Tensor]) -> Vec<u8> {
    fn nested(values: &[f32], shape: &[usize]) -> Value {
        match shape {
            [] => Value::from(values[0]),
            [n, rest @ ..] => {
                let step = values.len() / n;
                Value::Array(
                    (0..*n)
                        .map(|i| nested(&values[i * step..(i + 1) * step], rest))
                        .collect(),
                )
            }
        }
    }
    let instances: Vec<Value> = tiles
        .iter()
        .map(|t| {
            let values: Vec<f32> = t.array::<f32>().unwrap().iter().copied().collect();
            nested(&values, t.shape())
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "instances": instances })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_route_answers_with_the_model_output() {
    let node = start("identity.onnx", 16).await;
    let base = format!("http://{}", node.http_addr().unwrap());
    let rows: Vec<Instance> = (0..3)
        .map(|i| Instance::new().with("input", tile(i, 4, 5, 2)))
        .collect();
    let expected: Vec<Instance> = rows
        .iter()
        .map(|r| Instance::new().with("output", r.get("input").unwrap().clone()))
        .collect();

    // TF Serving, row and columnar, on the plain and versioned paths.
    for (layout, path) in [
        (tf_serving::Layout::Row, "/v1/models/ident:predict"),
        (
            tf_serving::Layout::Columnar,
            "/v1/models/ident/versions/1:predict",
        ),
    ] {
        let mut body = Vec::new();
        tf_serving::encode_request(&rows, layout, None, &mut body).unwrap();
        let (status, _, answer) = post(&format!("{base}{path}"), body).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        assert_eq!(
            tf_serving::decode_response(&answer, &out_spec()).unwrap(),
            expected
        );
    }

    // AI Platform and Vertex routes with Earth Engine's formats; a single-input model takes
    // the band under any name.
    let renamed: Vec<Instance> = rows
        .iter()
        .map(|r| Instance::new().with("array", r.get("input").unwrap().clone()))
        .collect();
    for path in [
        "/v1/projects/p/models/ident:predict",
        "/v1/projects/p/models/ident/versions/v2:predict",
        "/v1/projects/p/locations/us-central1/endpoints/42:predict",
    ] {
        let mut body = Vec::new();
        serialized_tf_tensors::encode_request(&renamed, &mut body).unwrap();
        let (status, _, answer) = post(&format!("{base}{path}"), body).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        assert_eq!(
            serialized_tf_tensors::decode_response(&answer, &out_spec()).unwrap(),
            expected
        );
    }
    let hosted = format!("{base}/v1/projects/p/models/ident:predict");
    let mut body = Vec::new();
    raw_json::encode_request(&rows, &mut body).unwrap();
    let (status, _, answer) = post(&hosted, body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(
        raw_json::decode_response(&answer, &out_spec()).unwrap(),
        expected
    );
    let mut body = Vec::new();
    nd_arrays::encode_request(&rows, &mut body).unwrap();
    let (status, _, answer) = post(&hosted, body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(
        nd_arrays::decode_response(&answer, &out_spec()[0]).unwrap(),
        expected
    );

    // KServe v2, JSON and binary.
    let batched = Instance::stack(&rows).unwrap();
    let batched_out = Instance::stack(&expected).unwrap();
    for binary in [false, true] {
        let mut body = Vec::new();
        let hl = kserve_v2::encode_request(&batched, &["output"], binary, &mut body).unwrap();
        let mut req = reqwest::Client::new()
            .post(format!("{base}/v2/models/ident/infer"))
            .body(body);
        if let Some(h) = hl {
            req = req.header(kserve_v2::HEADER_LENGTH_HEADER, h.to_string());
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let hl = r
            .headers()
            .get(kserve_v2::HEADER_LENGTH_HEADER)
            .map(|v| v.to_str().unwrap().parse().unwrap());
        assert_eq!(hl.is_some(), binary);
        let answer = r.bytes().await.unwrap();
        assert_eq!(
            kserve_v2::decode_response(&answer, hl, &out_spec()).unwrap(),
            batched_out
        );
    }

    // Status, metadata, health.
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = get("/v1/models/ident").await;
    assert_eq!(
        (s, v["model_version_status"][0]["state"].as_str()),
        (200, Some("AVAILABLE"))
    );
    let (s, v) = get("/v1/models/ident/metadata").await;
    assert_eq!(s, 200);
    let input =
        &v["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["input"];
    assert_eq!(input["dtype"], "DT_FLOAT");
    assert_eq!(input["tensor_shape"]["dim"].as_array().unwrap().len(), 4);
    assert_eq!(
        get("/v2/health/live").await,
        (200, serde_json::json!({"live": true}))
    );
    assert_eq!(
        get("/v2/health/ready").await,
        (200, serde_json::json!({"ready": true}))
    );
    assert_eq!(get("/v2/models/ident/ready").await.0, 200);
    let (s, v) = get("/v2/models/ident").await;
    assert_eq!(
        (s, v["inputs"][0]["datatype"].as_str()),
        (200, Some("FP32"))
    );
    let (s, v) = get("/v2/models/other").await;
    assert_eq!(s, 404);
    assert!(v["error"].as_str().unwrap().contains("serves \"ident\""));

    let stats = node.shutdown().await.unwrap();
    assert_eq!(stats.answered, 9, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_naming_what_was_wrong_and_the_node_keeps_serving() {
    let node = start("conv_r2.onnx", 16).await;
    let base = format!("http://{}", node.http_addr().unwrap());
    let tf = format!("{base}/v1/models/ident:predict");
    let hosted = format!("{base}/v1/projects/p/models/ident:predict");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (&tf, b"{\"instances\": [".to_vec(), "JSON"),
        (
            &tf,
            b"{\"instances\": [{\"nope\": [[[1, 2, 3]]]}]}".to_vec(),
            "\"input\"",
        ),
        (&tf, b"{\"rows\": []}".to_vec(), "neither"),
        (
            &hosted,
            one_tile_body(tile(0, 4, 4, 2)),
            "expected shape [?, ?, 3]",
        ),
        (
            &hosted,
            one_tile_body(Tensor::zeros(DataType::Float64, &[4, 4, 3])),
            "expected float32 values, found float64",
        ),
        (
            &hosted,
            b"{\"instances\": [{\"input\": \"@@@\"}]}".to_vec(),
            "base64",
        ),
        (&hosted, b"{\"instances\": []}".to_vec(), "empty"),
    ];
    for (url, body, needle) in cases {
        let (status, _, answer) = post(url, body).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&answer));
        let e = if url == hosted {
            let (code, name, message) = google_error_of(&answer);
            assert_eq!((code, name.as_str()), (400, "INVALID_ARGUMENT"));
            message
        } else {
            error_of(&answer)
        };
        assert!(e.contains(needle), "{needle:?} not in {e:?}");
    }
    // Over the body limit: 413 naming the limit, before the body is read.
    let (status, _, answer) = post(&tf, vec![b' '; (1 << 20) + 1]).await;
    assert_eq!(status, 413);
    assert!(error_of(&answer).contains("limit of 1048576 bytes"));
    // Still serving, and the answer is the model's.
    let (status, _, answer) = post(&hosted, one_tile_body(tile(1, 6, 6, 3))).await;
    assert_eq!(status, 200);
    let rows = serialized_tf_tensors::decode_response(&answer, &out_spec()).unwrap();
    assert_eq!(rows[0].get("output").unwrap().shape(), &[6, 6, 2]);
    let stats = node.shutdown().await.unwrap();
    assert_eq!((stats.answered, stats.bad), (1, 8), "{stats}");
}

/// Opens a request whose body never finishes and gives the node 200 ms to admit it: it holds
/// one admission slot until [`complete`] sends the rest (returns the stream to complete it
/// with).
async fn stalled_request(
    addr: std::net::SocketAddr,
    path: &str,
    body: &[u8],
) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body[..body.len() / 2]).await.unwrap();
    s.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s
}

/// Sends the rest of a [`stalled_request`]'s `body` and reads the node's reply to its end.
async fn complete(mut held: tokio::net::TcpStream, body: &[u8]) -> String {
    held.write_all(&body[body.len() / 2..]).await.unwrap();
    let mut reply = Vec::new();
    held.read_to_end(&mut reply).await.unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_admission_limit_rest_gets_429_and_grpc_resource_exhausted() {
    let node = start("identity.onnx", 1).await;
    let addr = node.http_addr().unwrap();
    let body = one_tile_body(tile(0, 2, 2, 1));
    let path = "/v1/projects/p/models/ident:predict";
    let held = stalled_request(addr, path, &body).await;
    let (status, headers, answer) = post(&format!("http://{addr}{path}"), body.clone()).await;
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(headers.get("retry-after").unwrap(), "1");
    let (code, name, message) = google_error_of(&answer);
    assert_eq!((code, name.as_str()), (429, "RESOURCE_EXHAUSTED"));
    assert!(message.contains("busy"), "{message}");
    let mut grpc =
        PredictionServiceClient::connect(format!("http://{}", node.grpc_addr().unwrap()))
            .await
            .unwrap();
    let req = predict_request("ident", &Tensor::stack(&[&tile(0, 2, 2, 1)]).unwrap(), &[]);
    let status = grpc.predict(req.clone()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert_eq!(status.metadata().get("retry-after").unwrap(), "1");
    // Health routes are not admission-limited.
    assert_eq!(
        reqwest::get(format!("http://{addr}/v2/health/ready"))
            .await
            .unwrap()
            .status(),
        200
    );
    // The held request completes normally once its body arrives, and frees its slot.
    let reply = complete(held, &body).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let answer = grpc.predict(req).await.unwrap().into_inner();
    assert!(answer.outputs.contains_key("output"));
    let stats = node.shutdown().await.unwrap();
    assert_eq!((stats.answered, stats.refused), (2, 2), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_predict_and_model_infer_answer_in_the_form_they_were_asked() {
    let node = start("identity.onnx", 16).await;
    let url = format!("http://{}", node.grpc_addr().unwrap());
    let tiles = [tile(1, 3, 4, 2), tile(2, 3, 4, 2)];
    let mut tf = PredictionServiceClient::connect(url.clone()).await.unwrap();
    // One batched TensorProto per input.
    let batched = Tensor::stack(&[&tiles[0], &tiles[1]]).unwrap();
    let answer = tf
        .predict(predict_request("ident", &batched, &[]))
        .await
        .unwrap()
        .into_inner();
    assert!(tensor_proto::from_proto(&answer.outputs["output"])
        .unwrap()
        .bit_eq(&batched));
    // One serialized TensorProto per instance.
    let strings =
        Tensor::from_strings(&[2], tiles.iter().map(tensor_proto::serialize).collect()).unwrap();
    let answer = tf
        .predict(predict_request("ident", &strings, &["output"]))
        .await
        .unwrap()
        .into_inner();
    let out = tensor_proto::from_proto(&answer.outputs["output"]).unwrap();
    assert!(out.bit_eq(&strings));
    // Unknown model and output names are named.
    let e = tf
        .predict(predict_request("nope", &batched, &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = tf
        .predict(predict_request("ident", &tiles[0], &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    // Over max_body_bytes (1 MiB here): tonic's decoder refuses it with OUT_OF_RANGE.
    let big = Tensor::stack(&[&tile(0, 300, 300, 3)]).unwrap();
    let e = tf
        .predict(predict_request("ident", &big, &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
    assert!(e.message().contains("too large"), "{e:?}");

    let mut ks = GrpcInferenceServiceClient::connect(url).await.unwrap();
    assert!(
        ks.server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    let mut raw = Vec::new();
    kserve_v2::write_raw_contents(&batched, &mut raw);
    let answer = ks
        .model_infer(ModelInferRequest {
            model_name: "ident".into(),
            inputs: vec![model_infer_request::InferInputTensor {
                name: "input".into(),
                datatype: "FP32".into(),
                shape: vec![2, 3, 4, 2],
                ..Default::default()
            }],
            raw_input_contents: vec![raw.clone().into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.outputs[0].name, "output");
    assert_eq!(answer.outputs[0].shape, vec![2, 3, 4, 2]);
    assert_eq!(answer.raw_output_contents[0].as_ref(), raw.as_slice());
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_are_batched_into_one_run() {
    let cfg = ServeConfig {
        max_concurrency: 1,
        ..config(64)
    };
    let node = Node::start(model("conv_r2.onnx"), cfg).await.unwrap();
    let url = format!(
        "http://{}/v1/projects/p/models/ident:predict",
        node.http_addr().unwrap()
    );
    let mut tasks = Vec::new();
    for i in 0..12 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let (status, _, answer) = post(&url, one_tile_body(tile(i, 96, 96, 3))).await;
            assert_eq!(status, 200);
            serialized_tf_tensors::decode_response(&answer, &out_spec()).unwrap()
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    // Each request got its own tile's answer: the same as running it alone.
    let alone = model("conv_r2.onnx");
    for (i, a) in answers.iter().enumerate() {
        let expected = alone
            .run(&[Instance::new().with("input", tile(i, 96, 96, 3))])
            .unwrap();
        assert!(a[0].bit_eq(&expected[0]), "request {i}");
    }
    let stats = node.shutdown().await.unwrap();
    assert_eq!(stats.instances, 12);
    assert!(stats.runs < 12 && stats.largest_batch > 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_request_in_flight() {
    let node = start("identity.onnx", 4).await;
    let addr = node.http_addr().unwrap();
    let body = one_tile_body(tile(3, 2, 2, 1));
    let held = stalled_request(addr, "/v1/projects/p/models/ident:predict", &body).await;
    let stopping = tokio::spawn(node.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown must wait for the request in flight"
    );
    // New connections are refused once shutdown began.
    assert!(reqwest::get(format!("http://{addr}/v2/health/live"))
        .await
        .is_err());
    let reply = complete(held, &body).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let stats = tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(stats.answered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_errors_come_in_googles_form_and_the_others_keep_theirs() {
    let node = start("conv_r2.onnx", 16).await;
    let base = format!("http://{}", node.http_addr().unwrap());
    let ai = format!("{base}/v1/projects/p/models/ident/versions/v1:predict");
    let vertex = format!("{}:predict", vertex_endpoint(&node));
    let two_channels = one_tile_body(tile(0, 4, 4, 2));
    // URL, body, HTTP status, error.code, error.status, a part of error.message.
    type Case = (String, Vec<u8>, u16, u64, &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (
            ai.clone(),
            b"{\"instances\": [".to_vec(),
            400,
            400,
            "INVALID_ARGUMENT",
            "JSON",
        ),
        (
            vertex.clone(),
            two_channels,
            400,
            400,
            "INVALID_ARGUMENT",
            "[?, ?, 3]",
        ),
        (
            format!("{base}/v1/projects/p/models/other:predict"),
            b"{}".to_vec(),
            404,
            404,
            "NOT_FOUND",
            "serves \"ident\"",
        ),
        (
            format!("{base}/v1/projects/p/locations/l/endpoints/7:explain"),
            b"{}".to_vec(),
            404,
            404,
            "NOT_FOUND",
            "no route",
        ),
        // Over the body limit: Vertex's 400 INVALID_ARGUMENT, naming the limit.
        (
            vertex.clone(),
            vec![b' '; (1 << 20) + 1],
            400,
            400,
            "INVALID_ARGUMENT",
            "limit of 1048576 bytes",
        ),
    ];
    for (url, body, http, code, name, needle) in cases {
        let (status, _, answer) = post(&url, body).await;
        assert_eq!(status, http, "{url}: {}", String::from_utf8_lossy(&answer));
        let (got_code, got_name, message) = google_error_of(&answer);
        assert_eq!((got_code, got_name.as_str()), (code, name), "{url}");
        assert!(
            message.contains(needle),
            "{url}: {needle:?} not in {message:?}"
        );
    }
    // TF Serving and KServe keep {"error": "..."}.
    for url in [
        format!("{base}/v1/models/ident:predict"),
        format!("{base}/v2/models/ident/infer"),
    ] {
        let (status, _, answer) = post(&url, b"{\"instances\": [".to_vec()).await;
        assert_eq!(status, 400);
        assert!(!error_of(&answer).is_empty());
    }
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_lists_are_read_the_way_the_models_input_takes_them() {
    // conv_r2 takes [?, ?, 3] per instance: the channel axis tells the two readings apart.
    let node = start("conv_r2.onnx", 16).await;
    let url = format!("{}:predict", vertex_endpoint(&node));
    let local = model("conv_r2.onnx");
    let tiles = [tile(1, 4, 5, 3), tile(2, 4, 5, 3)];
    let expected: Vec<Instance> = tiles
        .iter()
        .map(|t| {
            local
                .run(&[Instance::new().with("input", t.clone())])
                .unwrap()
                .remove(0)
        })
        .collect();
    // [row][col][channel], as Vertex's TensorFlow containers take numpy's tolist(): answered
    // as TF Serving rows, in the same layout.
    let (status, _, answer) = post(&url, bare_lists(&tiles)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let rows = tf_serving::decode_response(&answer, &out_spec()).unwrap();
    for (got, want) in rows.iter().zip(&expected) {
        assert!(got.bit_eq(want), "[row][col][channel]: {got:?}");
    }
    // Channel-first, as Earth Engine's ND_ARRAYS sends it: answered channel-first.
    let named: Vec<Instance> = tiles
        .iter()
        .map(|t| Instance::new().with("input", t.clone()))
        .collect();
    let mut body = Vec::new();
    nd_arrays::encode_request(&named, &mut body).unwrap();
    let (status, _, answer) = post(&url, body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let rows = nd_arrays::decode_response(&answer, &out_spec()[0]).unwrap();
    for (got, want) in rows.iter().zip(&expected) {
        assert!(got.bit_eq(want), "channel-first: {got:?}");
    }
    // 3 x 4 x 3 fits [?, ?, 3] both ways: a 400 naming both readings.
    let (status, _, answer) = post(&url, bare_lists(&[tile(0, 3, 4, 3)])).await;
    assert_eq!(status, 400);
    let (_, _, message) = google_error_of(&answer);
    assert!(
        message.contains("ambiguous")
            && message.contains("[row][col][channel] (shape [3, 4, 3])")
            && message.contains("channel-first [channel][row][col] (ND_ARRAYS) (shape [4, 3, 3])"),
        "{message}"
    );
    // Neither way: named as such.
    let (status, _, answer) = post(&url, bare_lists(&[tile(0, 4, 5, 2)])).await;
    assert_eq!(status, 400);
    let (_, _, message) = google_error_of(&answer);
    assert!(message.contains("neither"), "{message}");
    // Instances in different layouts in one request are refused.
    let (status, _, answer) = post(&url, bare_lists(&[tile(0, 4, 5, 3), tile(0, 3, 4, 5)])).await;
    assert_eq!(status, 400);
    let (_, _, message) = google_error_of(&answer);
    assert!(message.contains("one layout"), "{message}");
    let stats = node.shutdown().await.unwrap();
    assert_eq!((stats.answered, stats.bad), (2, 3), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vertex_raw_predict_takes_the_body_as_is_or_in_an_http_body() {
    let node = start("conv_r2.onnx", 16).await;
    let base = vertex_endpoint(&node);
    let body = one_tile_body(tile(3, 6, 5, 3));
    let (status, _, predicted) = post(&format!("{base}:predict"), body.clone()).await;
    assert_eq!(status, 200);
    // The body as it is (curl, ee-predict-client): answered as :predict.
    let (status, _, answer) = post(&format!("{base}:rawPredict"), body.clone()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(answer, predicted);
    // As Google's REST client sends it: the request message's JSON, answered as an
    // HttpBody's JSON.
    let mut data = Vec::new();
    ee_tensor_proto::encode_standard_into(&body, &mut data);
    let wrapped = serde_json::json!({"httpBody": {
        "contentType": "application/json",
        "data": String::from_utf8(data).unwrap(),
    }});
    let (status, _, answer) = post(
        &format!("{base}:rawPredict"),
        serde_json::to_vec(&wrapped).unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let v: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(v["contentType"], "application/json");
    let data = v["data"].as_str().unwrap();
    let inner = ee_tensor_proto::decode_base64(data.as_bytes(), &|| "data".into()).unwrap();
    assert_eq!(inner, predicted);
    // A body of another type is named.
    let other = serde_json::json!({"httpBody": {"contentType": "image/png", "data": "AAAA"}});
    let (status, _, answer) = post(
        &format!("{base}:rawPredict"),
        serde_json::to_vec(&other).unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    let (_, name, message) = google_error_of(&answer);
    assert_eq!(name, "INVALID_ARGUMENT");
    assert!(message.contains("\"image/png\""), "{message}");
    // AI Platform has no :rawPredict.
    let (status, _, _) = post(
        &format!(
            "http://{}/v1/projects/p/models/ident:rawPredict",
            node.http_addr().unwrap()
        ),
        body,
    )
    .await;
    assert_eq!(status, 404);
    node.shutdown().await.unwrap();
}

/// Starts a raw gRPC call to `path` whose body announces a 1000-byte message and then never
/// comes: the call's answer, as far as the server gives one.
fn stalled_grpc_call(
    channel: &tonic::transport::Channel,
    path: &str,
) -> tokio::task::JoinHandle<
    Result<tonic::codegen::http::Response<tonic::body::Body>, tonic::transport::Error>,
> {
    use tonic::codegen::tokio_stream::{self, StreamExt};
    use tonic::codegen::Service;
    let frame = bytes::Bytes::from_static(&[0, 0, 0, 0x03, 0xe8]);
    let stream = tokio_stream::iter([Ok::<_, std::convert::Infallible>(frame)])
        .chain(tokio_stream::pending());
    let body = tonic::body::Body::new(axum::body::Body::from_stream(stream));
    let request = tonic::codegen::http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .unwrap();
    let mut channel = channel.clone();
    tokio::spawn(async move {
        std::future::poll_fn(|cx| channel.poll_ready(cx)).await?;
        channel.call(request).await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_are_admitted_before_their_body_is_read() {
    let node = start("identity.onnx", 1).await;
    let addr = node.http_addr().unwrap();
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", node.grpc_addr().unwrap()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let body = one_tile_body(tile(0, 2, 2, 1));
    let path = "/v1/projects/p/models/ident:predict";

    // A full node refuses a call at its headers: the answer comes while the body never does.
    let held = stalled_request(addr, path, &body).await;
    for method in [
        "/tensorflow.serving.PredictionService/Predict",
        "/inference.GRPCInferenceService/ModelInfer",
    ] {
        let answer =
            tokio::time::timeout(Duration::from_secs(5), stalled_grpc_call(&channel, method))
                .await
                .unwrap_or_else(|_| {
                    panic!("{method}: no answer while the body is pending: admitted after decoding")
                })
                .unwrap()
                .unwrap();
        let headers = answer.headers();
        assert_eq!(
            headers.get("grpc-status").unwrap(),
            "8",
            "{method}: {headers:?}"
        );
        assert_eq!(headers.get("retry-after").unwrap(), "1", "{method}");
    }
    let reply = complete(held, &body).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    // A call whose body is still on its way holds the slot already.
    let stalled = stalled_grpc_call(&channel, "/tensorflow.serving.PredictionService/Predict");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, answer) = post(&format!("http://{addr}{path}"), body.clone()).await;
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&answer));
    stalled.abort();
    drop(channel);
    // Once the stalled call is gone its slot is free again.
    let mut freed = false;
    for _ in 0..50 {
        let (status, _, _) = post(&format!("http://{addr}{path}"), body.clone()).await;
        if status == 200 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "the abandoned call kept its admission slot");
    node.shutdown().await.unwrap();
}
