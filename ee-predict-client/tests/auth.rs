//! Tests of the auth module: tokens from an environment variable, from a command, and from a
//! service-account key exchanged at a real token endpoint on 127.0.0.1 that verifies the
//! JWT's RS256 signature with the public key; plus checks that no token, JWT or private key
//! ever shows in errors, `Debug` output or log events.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use ee_predict_client::{AuthConfig, AuthError, Secret, TokenProvider};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/auth");
const CLIENT_EMAIL: &str = "predictor@ee-predict-test.iam.gserviceaccount.com";
const KEY_ID: &str = "0123456789abcdef0123456789abcdef01234567";
const SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

fn private_key_lines() -> Vec<String> {
    std::fs::read_to_string(fixture("private.pem"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(String::from)
        .collect()
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ee-predict-client-auth-{}-{tag}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// A token endpoint on 127.0.0.1.

#[derive(Clone, Copy)]
enum Reply {
    /// `{"access_token": "ya29.test-<n>", "expires_in": .., "token_type": "Bearer"}`.
    Token { expires_in: u64 },
    /// 400 `{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}`.
    InvalidGrant,
}

struct EndpointState {
    /// What the endpoint answers; tests may switch it.
    reply: StdMutex<Reply>,
    delay: Duration,
    /// The `token_uri` written into the key file: the expected `aud`.
    token_uri: String,
    public_key: DecodingKey,
    requests: AtomicUsize,
    /// Every assertion received (all verified), and every token handed out.
    assertions: StdMutex<Vec<String>>,
    tokens: StdMutex<Vec<String>>,
    /// Why requests failed verification; must stay empty.
    failures: StdMutex<Vec<String>>,
}

struct Endpoint {
    state: Arc<EndpointState>,
    key_file: PathBuf,
    _dir: TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Endpoint {
    /// Starts an endpoint and writes a key file whose `token_uri` points at it (with
    /// `query` appended, when given).
    async fn start(reply: Reply, delay: Duration, query: Option<&str>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let mut token_uri = format!("http://{addr}/token");
        if let Some(query) = query {
            token_uri = format!("{token_uri}?{query}");
        }
        let dir = TempDir::new("sa");
        let key_file = write_key_file(dir.path(), &token_uri);
        let public_pem = std::fs::read(fixture("public.pem")).unwrap();
        let state = Arc::new(EndpointState {
            reply: StdMutex::new(reply),
            delay,
            token_uri,
            public_key: DecodingKey::from_rsa_pem(&public_pem).unwrap(),
            requests: AtomicUsize::new(0),
            assertions: StdMutex::new(Vec::new()),
            tokens: StdMutex::new(Vec::new()),
            failures: StdMutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/token", post(token_handler))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            state,
            key_file,
            _dir: dir,
            server,
        }
    }

    fn config(&self) -> AuthConfig {
        AuthConfig::ServiceAccount {
            key_file: self.key_file.clone(),
            scopes: SCOPES.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn set_reply(&self, reply: Reply) {
        *self.state.reply.lock().unwrap() = reply;
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    fn assertions(&self) -> Vec<String> {
        self.state.assertions.lock().unwrap().clone()
    }

    fn tokens(&self) -> Vec<String> {
        self.state.tokens.lock().unwrap().clone()
    }

    fn assert_no_failures(&self) {
        let failures = self.state.failures.lock().unwrap();
        assert!(
            failures.is_empty(),
            "token endpoint rejected requests: {failures:?}"
        );
    }
}

/// Copies the fixture key file with `token_uri` rewritten; returns its path.
fn write_key_file(dir: &Path, token_uri: &str) -> PathBuf {
    let template = std::fs::read_to_string(fixture("service_account.json")).unwrap();
    let mut key: Value = serde_json::from_str(&template).unwrap();
    key["token_uri"] = Value::String(token_uri.to_string());
    let path = dir.join("service_account.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&key).unwrap()).unwrap();
    path
}

#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    scope: String,
    aud: String,
    iat: u64,
    exp: u64,
}

async fn token_handler(
    State(state): State<Arc<EndpointState>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    let n = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(state.delay).await;
    match verify_request(&state, &headers, &body) {
        Ok(assertion) => state.assertions.lock().unwrap().push(assertion),
        Err(why) => {
            state.failures.lock().unwrap().push(why.clone());
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "test_check_failed", "error_description": why})),
            );
        }
    }
    let reply = *state.reply.lock().unwrap();
    match reply {
        Reply::Token { expires_in } => {
            let token = format!("ya29.test-{n}");
            state.tokens.lock().unwrap().push(token.clone());
            (
                StatusCode::OK,
                Json(
                    json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}),
                ),
            )
        }
        Reply::InvalidGrant => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."})),
        ),
    }
}

/// Checks the form and VERIFIES the assertion with the public key; returns the assertion.
fn verify_request(
    state: &EndpointState,
    headers: &HeaderMap,
    body: &str,
) -> Result<String, String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/x-www-form-urlencoded" {
        return Err(format!("content-type is {content_type:?}"));
    }
    let form = parse_form(body)?;
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or(format!("no {name} field"))
    };
    let grant_type = field("grant_type")?;
    if grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return Err(format!("grant_type is {grant_type:?}"));
    }
    let assertion = field("assertion")?;

    let header = decode_header(&assertion).map_err(|e| format!("bad JWT header: {e}"))?;
    if header.alg != Algorithm::RS256 {
        return Err(format!("alg is {:?}", header.alg));
    }
    if header.kid.as_deref() != Some(KEY_ID) {
        return Err(format!("kid is {:?}", header.kid));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&state.token_uri]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let claims = decode::<Claims>(&assertion, &state.public_key, &validation)
        .map_err(|e| format!("JWT verification failed: {e}"))?
        .claims;

    // The signature check is real: a tampered signature must fail.
    let mut tampered = assertion.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    if decode::<Claims>(&tampered, &state.public_key, &validation).is_ok() {
        return Err("a tampered JWT verified".into());
    }

    if claims.iss != CLIENT_EMAIL || claims.aud != state.token_uri {
        return Err(format!("claims are {claims:?}"));
    }
    if claims.scope != SCOPES.join(" ") {
        return Err(format!("scope is {:?}", claims.scope));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if claims.iat.abs_diff(now) > 60 || claims.exp != claims.iat + 3600 {
        return Err(format!(
            "iat/exp are {}/{} at {now}",
            claims.iat, claims.exp
        ));
    }
    Ok(assertion)
}

fn parse_form(body: &str) -> Result<Vec<(String, String)>, String> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or(format!("bad form pair {pair:?}"))?;
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3).ok_or("truncated escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------
// No auth, Secret, the provider's traits.

#[test]
fn provider_is_send_sync_clone_and_debug() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    check::<TokenProvider>();
    fn check_error<T: std::error::Error + Send + Sync + 'static>() {}
    check_error::<AuthError>();
}

#[test]
fn secret_is_redacted_in_debug_and_display() {
    let secret = Secret::new("ya29.very-secret");
    assert_eq!(secret.expose(), "ya29.very-secret");
    assert_eq!(format!("{secret:?}"), "[redacted]");
    assert_eq!(format!("{secret}"), "[redacted]");
    assert_eq!(
        secret.clone(),
        Secret::new(String::from("ya29.very-secret"))
    );
    assert_ne!(secret, Secret::new("other"));
}

#[test]
fn default_scopes_is_cloud_platform() {
    assert_eq!(
        AuthConfig::default_scopes(),
        vec!["https://www.googleapis.com/auth/cloud-platform".to_string()]
    );
    assert_eq!(AuthConfig::default(), AuthConfig::None);
}

#[tokio::test]
async fn no_auth_gives_no_token() {
    let provider = TokenProvider::new(AuthConfig::None).unwrap();
    assert!(provider.token().await.unwrap().is_none());
    provider.invalidate().await;
    assert!(provider.token().await.unwrap().is_none());
    assert!(format!("{provider:?}").contains("none"));
}

// ---------------------------------------------------------------------------------------
// 1. Environment variable.

#[tokio::test]
async fn env_var_token_is_reread_and_unset_names_the_variable() {
    let var = format!("EE_PREDICT_AUTH_TEST_TOKEN_{}", std::process::id());
    std::env::set_var(&var, "env-token-one");
    let provider = TokenProvider::new(AuthConfig::BearerEnv { var: var.clone() }).unwrap();
    assert_eq!(
        provider.token().await.unwrap().unwrap().expose(),
        "env-token-one"
    );

    std::env::set_var(&var, "  env-token-two\n");
    assert_eq!(
        provider.token().await.unwrap().unwrap().expose(),
        "env-token-two"
    );

    std::env::remove_var(&var);
    let error = provider.token().await.unwrap_err();
    assert!(matches!(error, AuthError::EnvVar { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&var) && message.contains("not set"),
        "{message}"
    );

    std::env::set_var(&var, "   ");
    let message = provider.token().await.unwrap_err().to_string();
    assert!(
        message.contains(&var) && message.contains("empty"),
        "{message}"
    );

    std::env::set_var(&var, "two words");
    let message = provider.token().await.unwrap_err().to_string();
    assert!(
        message.contains(&var) && !message.contains("two words"),
        "{message}"
    );
    std::env::remove_var(&var);

    assert!(TokenProvider::new(AuthConfig::BearerEnv { var: String::new() }).is_err());
}

// ---------------------------------------------------------------------------------------
// 2. Command.

/// A command printing `tok-<n>`, where n counts its runs (kept in a file in `dir`).
fn counting_command(dir: &Path) -> Vec<String> {
    let counter = dir.join("runs");
    vec![
        "sh".into(),
        "-c".into(),
        r#"n=$(cat "$1" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$1"; echo "tok-$n""#
            .into(),
        "sh".into(),
        counter.to_str().unwrap().into(),
    ]
}

#[tokio::test]
async fn command_token_is_cached_for_ttl_and_rerun_after_invalidate() {
    let dir = TempDir::new("cmd");
    let provider = TokenProvider::new(AuthConfig::BearerCommand {
        command: counting_command(dir.path()),
        ttl: Duration::from_secs(3600),
    })
    .unwrap();
    let first = provider.token().await.unwrap().unwrap();
    assert_eq!(first.expose(), "tok-1");
    let second = provider.token().await.unwrap().unwrap();
    assert_eq!(second, first, "served from cache within the ttl");

    provider.invalidate().await;
    let third = provider.token().await.unwrap().unwrap();
    assert_eq!(third.expose(), "tok-2", "re-run after invalidate");
    assert_eq!(provider.token().await.unwrap().unwrap().expose(), "tok-2");

    let debug = format!("{provider:?}");
    assert!(
        debug.contains("bearer_command") && debug.contains("\"sh\""),
        "{debug}"
    );
}

#[tokio::test]
async fn command_token_is_rerun_after_ttl() {
    let dir = TempDir::new("cmd-ttl");
    let provider = TokenProvider::new(AuthConfig::BearerCommand {
        command: counting_command(dir.path()),
        ttl: Duration::from_secs(1),
    })
    .unwrap();
    assert_eq!(provider.token().await.unwrap().unwrap().expose(), "tok-1");
    assert_eq!(provider.token().await.unwrap().unwrap().expose(), "tok-1");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(provider.token().await.unwrap().unwrap().expose(), "tok-2");
}

#[tokio::test]
async fn command_ttl_of_duration_max_caches_forever() {
    let dir = TempDir::new("cmd-max");
    let provider = TokenProvider::new(AuthConfig::BearerCommand {
        command: counting_command(dir.path()),
        ttl: Duration::MAX,
    })
    .unwrap();
    assert_eq!(provider.token().await.unwrap().unwrap().expose(), "tok-1");
    assert_eq!(provider.token().await.unwrap().unwrap().expose(), "tok-1");
}

#[tokio::test]
async fn command_first_line_is_trimmed() {
    let provider = TokenProvider::new(AuthConfig::BearerCommand {
        command: vec![
            "sh".into(),
            "-c".into(),
            "printf '  tok-a  \\nsecond\\n'".into(),
        ],
        ttl: Duration::ZERO,
    })
    .unwrap();
    assert_eq!(provider.token().await.unwrap().unwrap().expose(), "tok-a");
}

#[tokio::test]
async fn failing_command_reports_exit_status_and_stderr() {
    let provider = TokenProvider::new(AuthConfig::BearerCommand {
        command: vec!["sh".into(), "-c".into(), "echo oops >&2; exit 3".into()],
        ttl: Duration::from_secs(60),
    })
    .unwrap();
    let error = provider.token().await.unwrap_err();
    assert!(
        matches!(error, AuthError::CommandFailed { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("exit status 3"), "{message}");
    assert!(message.contains("oops"), "{message}");
    assert!(message.contains("`sh`"), "{message}");
}

#[tokio::test]
async fn command_with_no_output_or_no_program_fails() {
    let silent = TokenProvider::new(AuthConfig::BearerCommand {
        command: vec!["sh".into(), "-c".into(), "echo warn-only >&2".into()],
        ttl: Duration::from_secs(60),
    })
    .unwrap();
    let message = silent.token().await.unwrap_err().to_string();
    assert!(
        message.contains("no token")
            && message.contains("exit status 0")
            && message.contains("warn-only"),
        "{message}"
    );

    let missing = TokenProvider::new(AuthConfig::BearerCommand {
        command: vec!["/nonexistent/ee-predict-token-helper".into()],
        ttl: Duration::from_secs(60),
    })
    .unwrap();
    let message = missing.token().await.unwrap_err().to_string();
    assert!(
        message.contains("/nonexistent/ee-predict-token-helper"),
        "{message}"
    );

    for command in [vec![], vec![String::new()]] {
        let error = TokenProvider::new(AuthConfig::BearerCommand {
            command,
            ttl: Duration::from_secs(60),
        })
        .unwrap_err();
        assert!(matches!(error, AuthError::EmptyCommand), "{error:?}");
    }
}

// ---------------------------------------------------------------------------------------
// 3. Service account against a token endpoint on 127.0.0.1.

#[tokio::test]
async fn service_account_token_is_fetched_then_served_from_cache() {
    let endpoint = Endpoint::start(Reply::Token { expires_in: 3600 }, Duration::ZERO, None).await;
    let provider = TokenProvider::new(endpoint.config()).unwrap();
    assert_eq!(endpoint.requests(), 0, "new() fetches nothing");

    let first = provider.token().await.unwrap().unwrap();
    assert_eq!(first.expose(), "ya29.test-1");
    let second = provider.token().await.unwrap().unwrap();
    assert_eq!(second, first);
    assert_eq!(endpoint.requests(), 1, "second call served from cache");
    endpoint.assert_no_failures();
    assert_eq!(endpoint.assertions().len(), 1);

    // After a 401 the caller invalidates: the next call fetches anew.
    provider.invalidate().await;
    assert_eq!(
        provider.token().await.unwrap().unwrap().expose(),
        "ya29.test-2"
    );
    assert_eq!(endpoint.requests(), 2);
    endpoint.assert_no_failures();
}

#[tokio::test]
async fn service_account_token_inside_refresh_margin_is_refreshed() {
    // expires_in = 10 s is inside the 5-minute refresh margin.
    let endpoint = Endpoint::start(Reply::Token { expires_in: 10 }, Duration::ZERO, None).await;
    let provider = TokenProvider::new(endpoint.config()).unwrap();
    assert_eq!(
        provider.token().await.unwrap().unwrap().expose(),
        "ya29.test-1"
    );
    assert_eq!(
        provider.token().await.unwrap().unwrap().expose(),
        "ya29.test-2"
    );
    assert_eq!(
        endpoint.requests(),
        2,
        "a token expiring within the margin is refreshed"
    );
    endpoint.assert_no_failures();
}

#[tokio::test]
async fn failed_refresh_inside_margin_keeps_the_unexpired_token() {
    // expires_in = 100 s: inside the margin, so every call tries to refresh, but the token
    // is still valid for a while when a refresh fails.
    let endpoint = Endpoint::start(Reply::Token { expires_in: 100 }, Duration::ZERO, None).await;
    let provider = TokenProvider::new(endpoint.config()).unwrap();
    assert_eq!(
        provider.token().await.unwrap().unwrap().expose(),
        "ya29.test-1"
    );

    endpoint.set_reply(Reply::InvalidGrant);
    assert_eq!(
        provider.token().await.unwrap().unwrap().expose(),
        "ya29.test-1"
    );
    assert_eq!(endpoint.requests(), 2, "the refresh was tried");

    // After a 401 the old token is gone: the error comes through.
    provider.invalidate().await;
    let error = provider.token().await.unwrap_err();
    assert!(error.to_string().contains("invalid_grant"), "{error}");

    endpoint.set_reply(Reply::Token { expires_in: 3600 });
    assert_eq!(
        provider.token().await.unwrap().unwrap().expose(),
        "ya29.test-4"
    );
    endpoint.assert_no_failures();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_share_one_fetch() {
    let endpoint = Endpoint::start(
        Reply::Token { expires_in: 3600 },
        Duration::from_millis(300),
        None,
    )
    .await;
    let provider =
        TokenProvider::with_http_client(endpoint.config(), reqwest::Client::new()).unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move { provider.token().await })
        })
        .collect();
    for task in tasks {
        let token = task.await.unwrap().unwrap().unwrap();
        assert_eq!(token.expose(), "ya29.test-1");
    }
    assert_eq!(endpoint.requests(), 1, "ten concurrent callers, one fetch");
    endpoint.assert_no_failures();
}

#[tokio::test]
async fn token_endpoint_error_names_status_and_error_but_not_the_jwt() {
    let endpoint = Endpoint::start(
        Reply::InvalidGrant,
        Duration::ZERO,
        Some("key=query-secret-value"),
    )
    .await;
    let provider = TokenProvider::new(endpoint.config()).unwrap();
    let error = provider.token().await.unwrap_err();
    endpoint.assert_no_failures();
    assert!(
        matches!(error, AuthError::TokenEndpoint { status: 400, .. }),
        "{error:?}"
    );

    let message = error.to_string();
    assert!(message.contains("invalid_grant"), "{message}");
    assert!(message.contains("Invalid JWT Signature."), "{message}");
    assert!(message.contains("400"), "{message}");
    let without_query = endpoint.state.token_uri.split('?').next().unwrap();
    assert!(message.contains(without_query), "{message}");
    assert!(!message.contains("query-secret-value"), "{message}");

    let assertions = endpoint.assertions();
    assert_eq!(assertions.len(), 1);
    for text in [message, format!("{error:?}")] {
        assert!(!text.contains(&assertions[0]), "{text}");
        for part in assertions[0].split('.') {
            assert!(!text.contains(part), "{text}");
        }
        assert!(!text.contains("query-secret-value"), "{text}");
    }

    // A failed fetch is not cached: the next call asks again.
    assert!(provider.token().await.is_err());
    assert_eq!(endpoint.requests(), 2);
}

#[tokio::test]
async fn unreachable_token_endpoint_names_the_uri() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let token_uri = format!("http://{}/token", listener.local_addr().unwrap());
    drop(listener);
    let dir = TempDir::new("refused");
    let key_file = write_key_file(dir.path(), &token_uri);
    let provider = TokenProvider::new(AuthConfig::ServiceAccount {
        key_file,
        scopes: vec![],
    })
    .unwrap();
    let error = provider.token().await.unwrap_err();
    assert!(matches!(error, AuthError::TokenRequest { .. }), "{error:?}");
    assert!(error.to_string().contains(&token_uri), "{error}");
}

// ---------------------------------------------------------------------------------------
// 4. Secrecy.

#[derive(Clone)]
struct Capture(Arc<StdMutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything here runs on this test's one thread, where the capturing subscriber is the
/// default.
#[tokio::test]
async fn no_token_jwt_or_private_key_in_logs_debug_or_errors() {
    let buffer = Arc::new(StdMutex::new(Vec::new()));
    let writer = Capture(buffer.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut texts = Vec::new();

    // Service account: fetch, cache hit, refresh inside the margin, invalidate.
    let good = Endpoint::start(Reply::Token { expires_in: 3600 }, Duration::ZERO, None).await;
    let provider = TokenProvider::new(good.config()).unwrap();
    let token = provider.token().await.unwrap().unwrap();
    texts.push(format!("{:?}", provider.token().await.unwrap()));
    provider.invalidate().await;
    provider.token().await.unwrap();
    texts.push(format!("{provider:?}"));
    texts.push(format!("{token:?} {token}"));
    good.assert_no_failures();

    let short = Endpoint::start(Reply::Token { expires_in: 10 }, Duration::ZERO, None).await;
    let short_provider = TokenProvider::new(short.config()).unwrap();
    short_provider.token().await.unwrap();
    short_provider.token().await.unwrap();
    texts.push(format!("{short_provider:?}"));
    short.assert_no_failures();

    // Error flows.
    let bad = Endpoint::start(Reply::InvalidGrant, Duration::ZERO, None).await;
    let bad_provider = TokenProvider::new(bad.config()).unwrap();
    let mut errors = vec![bad_provider.token().await.unwrap_err()];
    texts.push(format!("{bad_provider:?}"));
    bad.assert_no_failures();

    let failing = TokenProvider::new(AuthConfig::BearerCommand {
        command: vec!["sh".into(), "-c".into(), "echo oops >&2; exit 3".into()],
        ttl: Duration::from_secs(60),
    })
    .unwrap();
    errors.push(failing.token().await.unwrap_err());
    texts.push(format!("{failing:?}"));

    let unset = TokenProvider::new(AuthConfig::BearerEnv {
        var: "EE_PREDICT_AUTH_TEST_NEVER_SET".into(),
    })
    .unwrap();
    errors.push(unset.token().await.unwrap_err());
    texts.push(format!("{unset:?}"));

    let dir = TempDir::new("secrecy");
    for (name, content) in malformed_key_files() {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        errors.push(
            TokenProvider::new(AuthConfig::ServiceAccount {
                key_file: path,
                scopes: vec![],
            })
            .unwrap_err(),
        );
    }
    for error in &errors {
        texts.push(error.to_string());
        texts.push(format!("{error:?}"));
    }

    let logs = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("fetched access token, expires in 3600 s"),
        "the capture works: {logs}"
    );
    texts.push(logs);

    let mut secrets: Vec<String> = Vec::new();
    for endpoint in [&good, &short, &bad] {
        secrets.extend(endpoint.tokens());
        for assertion in endpoint.assertions() {
            secrets.extend(assertion.split('.').map(String::from));
            secrets.push(assertion);
        }
    }
    assert_eq!(good.tokens().len(), 2);
    assert_eq!(short.tokens().len(), 2);
    assert_eq!(bad.assertions().len(), 1);
    secrets.extend(private_key_lines());
    for text in &texts {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{secret:?} leaked into: {text}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 5. Malformed key files.

/// (file name, content) of key files that `TokenProvider::new` must reject.
fn malformed_key_files() -> Vec<(&'static str, String)> {
    let template = std::fs::read_to_string(fixture("service_account.json")).unwrap();
    let key: Value = serde_json::from_str(&template).unwrap();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut key = key.clone();
        edit(&mut key);
        serde_json::to_string_pretty(&key).unwrap()
    };
    let private_pem = std::fs::read_to_string(fixture("private.pem")).unwrap();
    let public_pem = std::fs::read_to_string(fixture("public.pem")).unwrap();
    let truncated: String = private_pem.lines().take(10).collect::<Vec<_>>().join("\n");
    vec![
        ("not-json.json", format!("not json at all\n{private_pem}")),
        ("truncated.json", template[..template.len() / 2].to_string()),
        ("array.json", "[1, 2, 3]".to_string()),
        (
            "bare-string.json",
            serde_json::to_string(&Value::String(private_pem.clone())).unwrap(),
        ),
        (
            "no-private-key.json",
            with(&|k| {
                k.as_object_mut().unwrap().remove("private_key");
            }),
        ),
        (
            "no-client-email.json",
            with(&|k| {
                k.as_object_mut().unwrap().remove("client_email");
            }),
        ),
        (
            "private-key-number.json",
            with(&|k| k["private_key"] = json!(12345)),
        ),
        (
            "truncated-pem.json",
            with(&|k| k["private_key"] = Value::String(truncated.clone())),
        ),
        (
            "public-key.json",
            with(&|k| k["private_key"] = Value::String(public_pem.clone())),
        ),
        (
            "authorized-user.json",
            with(&|k| k["type"] = json!("authorized_user")),
        ),
        (
            "bad-token-uri.json",
            with(&|k| k["token_uri"] = json!("not a url")),
        ),
    ]
}

#[test]
fn malformed_key_file_is_rejected_naming_the_path() {
    let dir = TempDir::new("malformed");
    let key_lines = private_key_lines();
    for (name, content) in malformed_key_files() {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let error = TokenProvider::new(AuthConfig::ServiceAccount {
            key_file: path.clone(),
            scopes: AuthConfig::default_scopes(),
        })
        .unwrap_err();
        assert!(
            matches!(error, AuthError::KeyFile { .. }),
            "{name}: {error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()),
            "{name}: {message}"
        );
        for line in &key_lines {
            assert!(!message.contains(line.as_str()), "{name}: {message}");
        }
    }

    let missing = dir.path().join("does-not-exist.json");
    let error = TokenProvider::new(AuthConfig::ServiceAccount {
        key_file: missing.clone(),
        scopes: vec![],
    })
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("cannot be read"), "{message}");
}

#[test]
fn malformed_key_file_messages_say_what_is_wrong() {
    let dir = TempDir::new("reasons");
    let expect = [
        ("not-json.json", "not valid JSON"),
        ("no-private-key.json", "`private_key` is missing"),
        ("no-client-email.json", "`client_email` is missing"),
        ("private-key-number.json", "`private_key` is not a string"),
        ("truncated-pem.json", "`private_key`"),
        ("public-key.json", "`private_key` cannot sign"),
        ("authorized-user.json", "authorized_user"),
        ("bad-token-uri.json", "`token_uri`"),
    ];
    let files = malformed_key_files();
    for (name, reason) in expect {
        let (_, content) = files.iter().find(|(n, _)| *n == name).unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let message = TokenProvider::new(AuthConfig::ServiceAccount {
            key_file: path,
            scopes: vec![],
        })
        .unwrap_err()
        .to_string();
        assert!(message.contains(reason), "{name}: {message}");
    }
}

#[test]
fn fixture_key_file_loads_without_fetching() {
    let provider = TokenProvider::new(AuthConfig::ServiceAccount {
        key_file: fixture("service_account.json"),
        scopes: vec![],
    })
    .unwrap();
    let debug = format!("{provider:?}");
    assert!(
        debug.contains("service_account") && debug.contains(CLIENT_EMAIL),
        "{debug}"
    );
    for line in private_key_lines() {
        assert!(!debug.contains(line.as_str()), "{debug}");
    }
}
