//! Resuming a job whose output bands have different plane counts (a three-plane array band
//! beside a scalar band): interrupted part way and resumed, and with every tile in the
//! journal, the output equals a clean run's, band names included.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ee_model::{Model, ModelSpec, PredictOptions};
use ee_tensor_proto::payload::serialized_tf_tensors;
use ee_tensor_proto::{Instance, Tensor};
use gdal::{Dataset, Metadata};

use common::{make_input, read_band, scratch};

/// A server answering `vec` (the input's three planes) and `scalar` (their sum); after
/// `fail_after` requests it refuses every one with a 400.
async fn server(requests: Arc<AtomicUsize>, fail_after: Arc<AtomicUsize>) -> String {
    use axum::body::Bytes;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let (r, f) = (requests.clone(), fail_after.clone());
        async move {
            if r.fetch_add(1, Ordering::SeqCst) >= f.load(Ordering::SeqCst) {
                return (StatusCode::BAD_REQUEST, "no more today").into_response();
            }
            let rows = serialized_tf_tensors::decode_request(&body, &[]).unwrap();
            let answers: Vec<Instance> = rows
                .iter()
                .map(|row| {
                    let t = row.get("input").unwrap().array::<f32>().unwrap();
                    let sum = t.sum_axis(ndarray::Axis(2));
                    Instance::new()
                        .with("vec", Tensor::F32(t.to_owned()))
                        .with("scalar", Tensor::F32(sum))
                })
                .collect();
            let mut out = Vec::new();
            serialized_tf_tensors::encode_response(&answers, &mut out).unwrap();
            out.into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn spec(url: &str) -> ModelSpec {
    ModelSpec::from_json(&format!(
        r#"{{"predictor": {{"type": "aiPlatform", "projectId": "p", "modelName": "m", "baseUrl": "{url}"}},
            "inputBands": {{"input": ["B1", "B2", "B3"]}}, "inputTileSize": [16, 16], "inputOverlapSize": [4, 4],
            "outputBands": {{"vec": {{"type": "float", "dimensions": 1}}, "scalar": {{"type": "float"}}}},
            "maxPayloadBytes": 30000, "maxConcurrency": 1}}"#
    ))
    .unwrap()
}

/// Band names and every pixel's bits (masked pixels are NaN).
fn bands(path: &Path) -> (Vec<String>, Vec<Vec<u32>>) {
    let ds = Dataset::open(path).unwrap();
    let names = (1..=ds.raster_count())
        .map(|b| ds.rasterband(b).unwrap().description().unwrap())
        .collect();
    let values = (1..=ds.raster_count())
        .map(|b| read_band(path, b).0.iter().map(|v| v.to_bits()).collect())
        .collect();
    (names, values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_plane_counts_resume_to_the_clean_output() {
    let requests = Arc::new(AtomicUsize::new(0));
    let fail_after = Arc::new(AtomicUsize::new(usize::MAX));
    let url = server(requests.clone(), fail_after.clone()).await;
    let model = Model::new(spec(&url)).unwrap();
    let input = scratch("mixed_in.tif");
    make_input(&input, 100, 70, Some((10, 10, 30, 20)));
    let one = std::slice::from_ref(&input);

    let clean = scratch("mixed_clean.tif");
    model
        .predict_image(one, &clean, &PredictOptions::default())
        .await
        .unwrap();
    let want = bands(&clean);
    assert_eq!(want.0, ["vec_0", "vec_1", "vec_2", "scalar"]);
    let all = requests.swap(0, Ordering::SeqCst);
    assert!(all > 4, "{all} requests: too few to interrupt part way");

    // Interrupted part way: the server refuses after a third of the requests.
    let output = scratch("mixed_out.tif");
    fail_after.store(all / 3, Ordering::SeqCst);
    let err = model
        .predict_image(one, &output, &PredictOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no more today"), "{err}");
    fail_after.store(usize::MAX, Ordering::SeqCst);
    let resume = PredictOptions {
        resume: true,
        ..Default::default()
    };
    let report = model.predict_image(one, &output, &resume).await.unwrap();
    assert!(report.resumed > 0, "tiles came from the journal");
    assert!(
        bands(&output) == want,
        "interrupted and resumed: other pixels or names"
    );

    // Every tile in the journal: the job fails only when the output is put into place (a
    // directory is in the way), then the resumed run predicts nothing.
    let blocked = scratch("mixed_blocked.tif");
    std::fs::create_dir_all(blocked.join("in the way")).unwrap();
    model
        .predict_image(one, &blocked, &PredictOptions::default())
        .await
        .unwrap_err();
    std::fs::remove_dir_all(&blocked).unwrap();
    requests.store(0, Ordering::SeqCst);
    let report = model.predict_image(one, &blocked, &resume).await.unwrap();
    assert_eq!(report.resumed, report.plan.tiles, "every tile replayed");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        0,
        "nothing predicted again"
    );
    assert!(
        bands(&blocked) == want,
        "every tile replayed: other pixels or names"
    );
}
