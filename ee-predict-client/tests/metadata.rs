//! `PredictClient::check_inputs` against a loopback server answering the model metadata
//! routes with the documents real servers write: the Open Inference Protocol's
//! `GET /v2/models/NAME[/versions/V]` (KServe, Triton, MLServer, ee-serve) and TF Serving's
//! `GET /v1/models/NAME[/versions/N]/metadata`. A mismatch fails before any predict request;
//! a server that cannot describe the model is `NotDescribed`, not an error.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use common::*;
use ee_predict_client::{
    BackoffConfig, ClientConfig, Endpoint, Error, InputDescription, ModelCheck, ModelVersion,
    PredictorConfig,
};
use ee_tensor_proto::{DataType, PayloadFormat};

/// What ee-serve's node (and Triton, for a batching model) answers on `GET /v2/models/m`.
fn kserve_doc(version: &str) -> serde_json::Value {
    serde_json::json!({
        "name": "m",
        "versions": [version],
        "platform": "onnx",
        "inputs": [{"name": "B1", "datatype": "FP32", "shape": [-1, 8, 8, 2]}],
        "outputs": [{"name": "out", "datatype": "FP32", "shape": [-1, 8, 8, 2]}],
    })
}

/// What TF Serving answers on `GET /v1/models/m/metadata` for a SavedModel with one input.
fn tf_serving_doc() -> serde_json::Value {
    let dim = |s: &str| serde_json::json!({"size": s, "name": ""});
    serde_json::json!({
        "model_spec": {"name": "m", "signature_name": "", "version": "3"},
        "metadata": {"signature_def": {"signature_def": {
            "__saved_model_init_op": {
                "inputs": {},
                "outputs": {"__saved_model_init_op": {"dtype": "DT_INVALID", "tensor_shape": {"dim": [], "unknown_rank": true}, "name": "NoOp"}},
                "method_name": ""
            },
            "serving_default": {
                "inputs": {"B1": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [dim("-1"), dim("8"), dim("8"), dim("2")], "unknown_rank": false}, "name": "serving_default_B1:0"}},
                "outputs": {"out": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [dim("-1"), dim("8"), dim("8"), dim("2")], "unknown_rank": false}, "name": "StatefulPartitionedCall:0"}},
                "method_name": "tensorflow/serving/predict"
            }
        }}}
    })
}

struct MetadataServer {
    addr: std::net::SocketAddr,
    /// Requests that were not metadata GETs (predictions).
    posts: Arc<AtomicUsize>,
    gets: Arc<AtomicUsize>,
}

async fn spawn_metadata_server() -> MetadataServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let posts = Arc::new(AtomicUsize::new(0));
    let gets = Arc::new(AtomicUsize::new(0));
    let flaky = Arc::new(AtomicUsize::new(0));
    let (p, g) = (posts.clone(), gets.clone());
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri| {
        let (p, g, flaky) = (p.clone(), g.clone(), flaky.clone());
        async move {
            if method != Method::GET {
                p.fetch_add(1, Ordering::SeqCst);
                return (StatusCode::BAD_REQUEST, "no predictions here").into_response();
            }
            g.fetch_add(1, Ordering::SeqCst);
            match uri.path() {
                "/v2/models/m" => axum::Json(kserve_doc("1")).into_response(),
                "/v2/models/m/versions/2" => axum::Json(kserve_doc("2")).into_response(),
                "/v1/models/m/metadata" | "/v1/models/m/versions/3/metadata" => {
                    axum::Json(tf_serving_doc()).into_response()
                }
                "/v2/models/flaky" => {
                    if flaky.fetch_add(1, Ordering::SeqCst) < 2 {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [("retry-after", "0")],
                            "loading",
                        )
                            .into_response()
                    } else {
                        axum::Json(kserve_doc("1")).into_response()
                    }
                }
                "/v2/models/secret" => (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(serde_json::json!({"error": "token expired"})),
                )
                    .into_response(),
                "/v2/models/html" => "<html>a proxy's page</html>".into_response(),
                other => (
                    StatusCode::NOT_FOUND,
                    axum::Json(serde_json::json!({"error": format!("no route {other}")})),
                )
                    .into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    MetadataServer { addr, posts, gets }
}

fn quick() -> ClientConfig {
    ClientConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(20),
            base: 3.0,
        },
        ..Default::default()
    }
}

fn kserve(addr: std::net::SocketAddr, model: &str, version: Option<&str>) -> PredictorConfig {
    PredictorConfig {
        endpoint: Endpoint::KServeV2 {
            url: format!("http://{addr}"),
            model: model.into(),
            version: version.map(str::to_string),
        },
        base_url: None,
        format: PayloadFormat::KServeV2Binary,
    }
}

fn tf_serving(addr: std::net::SocketAddr, version: Option<i64>) -> PredictorConfig {
    PredictorConfig {
        endpoint: Endpoint::TfServing {
            url: format!("http://{addr}"),
            model: "m".into(),
            version: version.map(ModelVersion::Number),
            signature: None,
        },
        base_url: None,
        format: PayloadFormat::TfServingJson,
    }
}

fn b1(dtype: DataType, shape: &[usize]) -> Vec<InputDescription> {
    vec![InputDescription {
        name: "B1".into(),
        dtype,
        shape: shape.to_vec(),
    }]
}

async fn check(
    predictor: &PredictorConfig,
    inputs: &[InputDescription],
) -> ee_predict_client::Result<ModelCheck> {
    client_for(predictor, quick()).check_inputs(inputs).await
}

#[tokio::test]
async fn matching_inputs_pass_on_kserve_and_tf_serving() {
    let s = spawn_metadata_server().await;
    for predictor in [
        kserve(s.addr, "m", None),
        kserve(s.addr, "m", Some("2")),
        tf_serving(s.addr, None),
        tf_serving(s.addr, Some(3)),
    ] {
        match check(&predictor, &b1(DataType::Float32, &[8, 8, 2])).await {
            Ok(ModelCheck::Matches { inputs }) => {
                assert_eq!(inputs.len(), 1);
                assert_eq!(inputs[0].name, "B1");
                assert_eq!(inputs[0].dtype, Some(DataType::Float32));
            }
            other => panic!("{predictor:?}: {other:?}"),
        }
    }
    assert_eq!(s.gets.load(Ordering::SeqCst), 4);
    assert_eq!(s.posts.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_byte_raster_for_a_float_model_fails_before_any_tile() {
    let s = spawn_metadata_server().await;
    let err = check(&kserve(s.addr, "m", None), &b1(DataType::Uint8, &[8, 8, 2]))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::ModelInputs { .. }), "{msg}");
    assert_eq!(
        msg,
        format!(
            "http://{}/v2/models/m/infer: the model does not take what the job would send: \
             input \"B1\": the model takes FP32 (float32), the job would send UINT8; \
             set \"inputTypeOverride\": {{\"B1\": \"float32\"}} in the spec",
            s.addr
        )
    );
    let msg = check(
        &tf_serving(s.addr, None),
        &b1(DataType::Uint8, &[16, 16, 2]),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("the model takes DT_FLOAT (float32), the job would send DT_UINT8; set \"inputTypeOverride\": {\"B1\": \"float32\"}")
            && msg.contains("the model takes shape [-1, 8, 8, 2], the job would send [batch, 16, 16, 2]"),
        "{msg}"
    );
    let msg = check(
        &kserve(s.addr, "m", None),
        &b1(DataType::Float32, &[8, 8, 2])
            .into_iter()
            .map(|mut i| {
                i.name = "x".into();
                i
            })
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("input \"x\": the job would send it but the model takes only [\"B1\"]")
            && msg.contains("input \"B1\": the model takes it but the job does not send it"),
        "{msg}"
    );
    assert_eq!(
        s.posts.load(Ordering::SeqCst),
        0,
        "no predict request was sent"
    );
}

#[tokio::test]
async fn servers_that_cannot_describe_the_model_are_not_an_error() {
    let s = spawn_metadata_server().await;
    // A 404 on the metadata route, and a page that is not a metadata document.
    for (predictor, says) in [
        (
            kserve(s.addr, "other", None),
            "answered 404 Not Found: no route /v2/models/other",
        ),
        (
            kserve(s.addr, "html", None),
            "did not answer a model metadata document",
        ),
    ] {
        match check(&predictor, &b1(DataType::Uint8, &[8, 8, 2])).await {
            Ok(ModelCheck::NotDescribed { reason }) => {
                assert!(reason.contains(says), "{reason}")
            }
            other => panic!("{predictor:?}: {other:?}"),
        }
    }
    let asked = s.gets.load(Ordering::SeqCst);
    // Hosted endpoints, plain URLs and serialized-tensor formats are not asked at all.
    let hosted = ai_platform(s.addr);
    let plain = PredictorConfig {
        endpoint: Endpoint::Url(format!("http://{}/predict", s.addr)),
        base_url: None,
        format: PayloadFormat::RawJson,
    };
    let serialized = PredictorConfig {
        format: PayloadFormat::SerializedTfTensors,
        ..tf_serving(s.addr, None)
    };
    for predictor in [hosted, plain, serialized] {
        assert!(
            matches!(
                check(&predictor, &b1(DataType::Uint8, &[8, 8, 2])).await,
                Ok(ModelCheck::NotDescribed { .. })
            ),
            "{predictor:?}"
        );
    }
    assert_eq!(s.gets.load(Ordering::SeqCst), asked);
}

#[tokio::test]
async fn the_metadata_request_is_retried_and_refusals_are_errors() {
    let s = spawn_metadata_server().await;
    assert!(matches!(
        check(
            &kserve(s.addr, "flaky", None),
            &b1(DataType::Float32, &[8, 8, 2])
        )
        .await,
        Ok(ModelCheck::Matches { .. })
    ));
    let err = check(
        &kserve(s.addr, "secret", None),
        &b1(DataType::Float32, &[8, 8, 2]),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Rejected { .. }), "{msg}");
    assert!(
        msg.contains("401 Unauthorized for the model's metadata: token expired"),
        "{msg}"
    );
}
