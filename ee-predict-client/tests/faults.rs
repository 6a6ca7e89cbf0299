//! The client against a server that misbehaves: overload (429 with and without Retry-After,
//! 503), 500s, dropped connections, stalls past the deadline, truncated and malformed bodies,
//! at a seeded rate. Every tile must be answered exactly once with its own values; refusals
//! must fail fast with the server's message; the concurrency level must settle under a
//! server that admits only a few requests at once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ee_predict_client::{
    AuthConfig, BackoffConfig, ClientConfig, Endpoint, Error, PredictClient, PredictorConfig,
};
use ee_tensor_proto::payload::serialized_tf_tensors;
use ee_tensor_proto::{Instance, PayloadFormat};

fn quick() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_millis(250),
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(40),
            base: 3.0,
        },
        max_bounded_retries: 30,
        jitter_seed: Some(42),
        ..Default::default()
    }
}

/// Runs `n` tiles in batches of `per` concurrently and checks each comes back once with its values.
async fn run_all(client: Arc<PredictClient>, n: usize, per: usize) {
    let mut set = tokio::task::JoinSet::new();
    for start in (0..n).step_by(per) {
        let client = client.clone();
        set.spawn(async move {
            let ids = start..(start + per).min(n);
            let tiles: Vec<Instance> = ids.clone().map(tile).collect();
            let answers = client
                .predict(&tiles, &labels(ids.clone()))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            (ids, answers)
        });
    }
    let mut seen = vec![0usize; n];
    while let Some(done) = set.join_next().await {
        let (ids, answers) = done.unwrap();
        assert_eq!(answers.len(), ids.len());
        for (id, a) in ids.zip(answers) {
            seen[id] += 1;
            assert!(
                a.get("out").unwrap().bit_eq(&tile(id).take("B1").unwrap()),
                "tile {id} got another tile's answer"
            );
        }
    }
    assert!(
        seen.iter().all(|&c| c == 1),
        "tiles answered {seen:?} times"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tile_survives_a_faulty_server() {
    let plan = FaultPlan {
        rate: 0.3,
        seed: 7,
        stall: Duration::from_millis(600),
        ..FaultPlan::new(PayloadFormat::SerializedTfTensors)
    };
    let (addr, log) = spawn_faulty(plan).await;
    let client = Arc::new(client_for(&ai_platform(addr), quick()));
    run_all(client.clone(), 240, 2).await;
    let by_kind = log.by_kind.lock().unwrap().clone();
    for kind in FAULTS {
        assert!(
            by_kind.get(&kind).copied().unwrap_or(0) > 0,
            "fault {kind:?} never happened: {by_kind:?}"
        );
    }
    let m = client.metrics();
    assert_eq!(m.requests_ok, 120);
    assert_eq!(m.requests_failed, 0);
    let faults: usize = FAULTS
        .iter()
        .map(|k| by_kind.get(k).copied().unwrap_or(0))
        .sum();
    assert_eq!(
        m.total_retries() as usize,
        faults,
        "one retry per injected fault: {m}"
    );
    for cause in ["429", "503", "500", "timeout"] {
        assert!(
            m.retries.contains_key(cause),
            "no {cause} retries counted: {m}"
        );
    }
}

#[tokio::test]
async fn refusals_fail_fast_with_the_servers_message() {
    for (status, text) in [
        (400, "Input to reshape is a tensor with 12 values"),
        (404, "Model not found"),
        (403, "Permission denied"),
    ] {
        let plan = FaultPlan {
            always: Some((status, text)),
            ..FaultPlan::new(PayloadFormat::SerializedTfTensors)
        };
        let (addr, log) = spawn_faulty(plan).await;
        let client = client_for(&ai_platform(addr), quick());
        let err = predict_failure(&client, 0..2).await;
        let msg = err.to_string();
        assert!(matches!(err, Error::Rejected { .. }), "{msg}");
        assert!(
            msg.contains(text)
                && msg.contains(&status.to_string())
                && msg.contains("tile 0, tile 1"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("http://{addr}/v1/projects/p/models/m:predict")),
            "{msg}"
        );
        let total: usize = log.by_kind.lock().unwrap().values().sum();
        assert_eq!(total, 1, "a refusal must not be retried");
    }
}

#[tokio::test]
async fn answers_of_the_wrong_shape_fail_without_retrying() {
    let plan = FaultPlan {
        rate: 1.0,
        kinds: vec![Fault::WrongCount],
        ..FaultPlan::new(PayloadFormat::SerializedTfTensors)
    };
    let (addr, log) = spawn_faulty(plan).await;
    let client = client_for(&ai_platform(addr), quick());
    let err = predict_failure(&client, 3..5).await;
    let msg = err.to_string();
    assert!(matches!(err, Error::Answer { .. }), "{msg}");
    assert!(
        msg.contains("2 instances were sent but 1 predictions came back")
            && msg.contains("tile 3, tile 4"),
        "{msg}"
    );
    assert_eq!(log.by_kind.lock().unwrap().values().sum::<usize>(), 1);
}

#[tokio::test]
async fn the_retry_budget_and_the_500_bound_end_in_a_report() {
    let plan = FaultPlan {
        rate: 1.0,
        kinds: vec![Fault::Unavailable],
        ..FaultPlan::new(PayloadFormat::SerializedTfTensors)
    };
    let (addr, _) = spawn_faulty(plan).await;
    let config = ClientConfig {
        total_budget: Duration::from_millis(150),
        ..quick()
    };
    let client = client_for(&ai_platform(addr), config);
    let err = predict_failure(&client, 5..6).await.to_string();
    assert!(
        err.contains("giving up on tiles tile 5") && err.contains("503") && err.contains("budget"),
        "{err}"
    );

    let plan = FaultPlan {
        rate: 1.0,
        kinds: vec![Fault::Internal],
        ..FaultPlan::new(PayloadFormat::SerializedTfTensors)
    };
    let (addr, log) = spawn_faulty(plan).await;
    let config = ClientConfig {
        max_bounded_retries: 3,
        ..quick()
    };
    let client = client_for(&ai_platform(addr), config);
    let err = predict_failure(&client, 1..2).await.to_string();
    assert!(
        err.contains("after 4 attempts") && err.contains("transient"),
        "{err}"
    );
    assert_eq!(log.by_kind.lock().unwrap()[&Fault::Internal], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_settles_near_what_the_server_admits() {
    let plan = FaultPlan {
        admit: 3,
        work: Duration::from_millis(15),
        ..FaultPlan::new(PayloadFormat::SerializedTfTensors)
    };
    let (addr, log) = spawn_faulty(plan).await;
    let config = ClientConfig {
        max_concurrency: 16,
        initial_concurrency: 16,
        ..quick()
    };
    let client = Arc::new(client_for(&ai_platform(addr), config));
    // Sample the client's concurrency limit while the job runs.
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = {
        let (client, samples) = (client.clone(), samples.clone());
        tokio::spawn(async move {
            loop {
                samples.lock().unwrap().push(client.concurrency_limit());
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };
    run_all(client.clone(), 160, 1).await;
    sampler.abort();
    let mut samples = samples.lock().unwrap().clone();
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    assert!(
        (1.0..=6.0).contains(&median),
        "median concurrency limit {median} against a server admitting 3"
    );
    let m = client.metrics();
    let rejected = log
        .by_kind
        .lock()
        .unwrap()
        .get(&Fault::TooMany)
        .copied()
        .unwrap_or(0);
    let accepted = log
        .by_kind
        .lock()
        .unwrap()
        .get(&Fault::Ok)
        .copied()
        .unwrap_or(0);
    assert_eq!(accepted, 160);
    // Starting at 16 against a server admitting 3, the limit must come down and stay near 3:
    // AIMD saws between about N/2 and N + a little, so most 429s come from the first round.
    assert!(
        rejected < 80,
        "{rejected} 429s for 160 requests: the client did not back off ({m})"
    );
    assert!(
        client.concurrency_limit() <= 10.0,
        "limit ended at {}",
        client.concurrency_limit()
    );
    assert!(log.peak_in_flight.load(Ordering::SeqCst) >= 3);
}

#[tokio::test]
async fn batches_fit_the_budget_and_oversized_tiles_are_refused() {
    let (addr, _) = spawn_faulty(FaultPlan::new(PayloadFormat::SerializedTfTensors)).await;
    let tiles: Vec<Instance> = (0..20).map(tile).collect();
    let mut one = Vec::new();
    serialized_tf_tensors::encode_request(&tiles[..1], &mut one).unwrap();
    let budget = one.len() * 7 / 2;
    let config = ClientConfig {
        max_payload_bytes: budget,
        ..quick()
    };
    let client = client_for(&ai_platform(addr), config);
    let plan = client.plan(&tiles, &labels(0..20)).unwrap();
    assert!(plan.len() >= 6 && plan.len() <= 10, "{plan:?}");
    assert_eq!(plan.iter().map(|r| r.len()).sum::<usize>(), 20);
    for r in &plan {
        let mut body = Vec::new();
        serialized_tf_tensors::encode_request(&tiles[r.clone()], &mut body).unwrap();
        assert!(
            body.len() <= budget,
            "batch {r:?} is {} bytes, budget {budget}",
            body.len()
        );
        assert!(r.len() > 1);
    }
    // Answers twice the size of requests halve what fits.
    let config = ClientConfig {
        max_payload_bytes: budget,
        output_multiplier: 2.0,
        ..quick()
    };
    let client = client_for(&ai_platform(addr), config);
    assert!(client.plan(&tiles, &labels(0..20)).unwrap().len() > plan.len());

    // A 256 x 256 x 4 float32 tile is about 1.4 MB as base64: above a 1 MB budget.
    let big = Instance::new().with(
        "B1",
        ee_tensor_proto::Tensor::zeros(ee_tensor_proto::DataType::Float32, &[256, 256, 4]),
    );
    let config = ClientConfig {
        max_payload_bytes: 1_000_000,
        ..quick()
    };
    let client = client_for(&ai_platform(addr), config);
    let err = client
        .plan(&[big], &["tile (col 3, row 1)".to_string()])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("tile (col 3, row 1) alone encodes to 1398"),
        "{err}"
    );
    assert!(err.contains("above the payload budget of 1000000 bytes; a tile of about 200 x 200 pixels (with its overlap) would fit"), "{err}");
}

/// A loopback port nothing listens on: bound, noted, dropped.
fn dead_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

#[tokio::test]
async fn a_url_without_a_scheme_is_refused_at_construction() {
    for (endpoint, format, shown) in [
        (
            Endpoint::TfServing {
                url: "localhost:8501".into(),
                model: "m".into(),
                version: None,
                signature: None,
            },
            PayloadFormat::TfServingJson,
            "localhost:8501",
        ),
        (
            Endpoint::KServeV2 {
                url: "ftp://h:8080".into(),
                model: "m".into(),
                version: None,
            },
            PayloadFormat::KServeV2Json,
            "ftp://h:8080",
        ),
        (
            Endpoint::Url("http://user:hunter2@/x?token=abc".into()),
            PayloadFormat::RawJson,
            "http:///x",
        ),
        (
            Endpoint::TfServing {
                url: "127.0.0.1:8500".into(),
                model: "m".into(),
                version: None,
                signature: None,
            },
            PayloadFormat::GrpcTfTensors,
            "127.0.0.1:8500",
        ),
    ] {
        let predictor = PredictorConfig {
            endpoint,
            base_url: None,
            format,
        };
        let err = PredictClient::new(&predictor, out_spec(), AuthConfig::None, quick())
            .err()
            .unwrap_or_else(|| panic!("{predictor:?} was accepted"))
            .to_string();
        assert!(err.contains(shown) && err.contains("`url`"), "{err}");
        assert!(!err.contains("hunter2") && !err.contains("abc"), "{err}");
    }
}

#[tokio::test]
async fn an_unreachable_server_fails_in_bounded_time_naming_the_url() {
    let addr = dead_port();
    let mut predictor = ai_platform(addr);
    predictor.base_url = Some(format!("http://user:hunter2@{addr}"));
    let config = ClientConfig {
        connect_timeout: Duration::from_millis(300),
        ..quick()
    };
    let client = client_for(&predictor, config);
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        client.predict(&[tile(0)], &labels(0..1)),
    )
    .await
    .expect("an unreachable server must fail within the connect timeout, not the budget")
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Unreachable { .. }), "{msg}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        msg.contains(&format!("http://{addr}/v1/projects/p/models/m:predict"))
            && msg.contains("attempts")
            && msg.contains("refused"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2") && !msg.contains("sekrit"), "{msg}");
}

/// A server that answers every request 503 with `retry_after` as its `Retry-After` header.
async fn spawn_busy(retry_after: &'static str) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = axum::Router::new().fallback(move || {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", retry_after)],
                "busy",
            )
                .into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, count)
}

#[tokio::test]
async fn retry_after_beyond_the_budget_ends_the_request_without_overflow() {
    // Far-future waits (seconds past u64, year 9999, a year whose seconds overflow i64) are
    // capped at the budget: the request gives up at once and says why, rather than panicking
    // on duration arithmetic or sleeping for centuries.
    let ignored = |v: &str| v == "1e400" || v.contains("9223372036854775807:");
    for value in [
        "18446744073709551615",
        "1e400",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Sun, 06 Nov 999999999999 08:49:37 GMT",
        "Sun, 06 Nov 2024 9223372036854775807:49:37 GMT",
    ] {
        let (addr, count) = spawn_busy(value).await;
        let config = ClientConfig {
            total_budget: if ignored(value) {
                Duration::from_millis(300)
            } else {
                Duration::from_secs(5)
            },
            ..quick()
        };
        let client = client_for(&ai_platform(addr), config);
        let started = std::time::Instant::now();
        let err = predict_failure(&client, 0..1).await.to_string();
        assert!(started.elapsed() < Duration::from_secs(2), "{value}: {err}");
        if ignored(value) {
            // Not a number of seconds nor a date: ignored, so the budget runs out retrying.
            assert!(count.load(Ordering::SeqCst) > 1, "{value}: {err}");
            continue;
        }
        assert_eq!(count.load(Ordering::SeqCst), 1, "{value}: {err}");
        assert!(
            err.contains("503") && err.contains("Retry-After") && err.contains("budget"),
            "{value}: {err}"
        );
    }
}

#[tokio::test]
async fn retry_after_in_the_far_past_retries_at_once() {
    for value in [
        "Mon, 01 Jan 0001 00:00:00 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT",
    ] {
        let (addr, count) = spawn_busy(value).await;
        let config = ClientConfig {
            total_budget: Duration::from_millis(300),
            ..quick()
        };
        let client = client_for(&ai_platform(addr), config);
        let err = predict_failure(&client, 0..1).await.to_string();
        assert!(count.load(Ordering::SeqCst) > 3, "{value}: {err}");
        assert!(err.contains("budget"), "{value}: {err}");
    }
}
