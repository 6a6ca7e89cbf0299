//! Bearer tokens for prediction requests.
//!
//! A [`TokenProvider`] hands out the `Authorization: Bearer …` token for a model
//! server according to an [`AuthConfig`]:
//!
//! * [`AuthConfig::None`]: no token at all (TF Serving or KServe on a private network).
//! * [`AuthConfig::BearerEnv`]: a token read from an environment variable on every call,
//!   so a value rotated by the surrounding process is picked up.
//! * [`AuthConfig::BearerCommand`]: the first line a command prints (for example
//!   `gcloud auth print-access-token`), cached for a fixed time.
//! * [`AuthConfig::ServiceAccount`]: a Google service-account key file; an RS256-signed JWT
//!   is exchanged for an OAuth2 access token at the key's `token_uri` (RFC 7523), and the
//!   token is cached until [`REFRESH_MARGIN`] before it expires.
//!
//! Tokens are wrapped in [`Secret`], whose `Debug` and `Display` print `[redacted]`.
//! Neither errors nor log events (`tracing`) ever carry a token, a private key or a JWT.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

/// How long before a service-account access token expires it is refreshed.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Lifetime of the JWT assertion sent to the token endpoint (the most Google accepts).
const JWT_LIFETIME_SECS: u64 = 3600;
/// OAuth2 grant type for a JWT bearer assertion (RFC 7523).
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google's token endpoint, used when a key file names none.
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Lifetime assumed when a token endpoint's answer has no `expires_in`.
const DEFAULT_EXPIRES_IN_SECS: u64 = 3600;
/// A token this close to expiry is no longer handed out, even when a refresh fails.
const EXPIRY_SLACK: Duration = Duration::from_secs(30);
/// Time limit of one token request, connection included.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Time limit of one run of a token command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest server or stderr text quoted in an error.
const MAX_QUOTED_CHARS: usize = 300;
/// What secrets are replaced with wherever they would otherwise show.
const REDACTED: &str = "[redacted]";

/// A secret string (an access token) whose `Debug` and `Display` print `"[redacted]"`.
///
/// Use [`Secret::expose`] to get at the value, for example to build an
/// `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret value itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Where bearer tokens come from.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum AuthConfig {
    /// No authentication: requests carry no `Authorization` header.
    #[default]
    None,
    /// Token read from an environment variable (re-read on every call, so a rotated value is
    /// picked up). Surrounding whitespace is trimmed.
    BearerEnv {
        /// Name of the environment variable.
        var: String,
    },
    /// Token printed (first line, trimmed) by a command, argv form; cached for `ttl` then re-run.
    ///
    /// The command runs without a shell, with stdin closed; it must finish within a minute.
    BearerCommand {
        /// Program and arguments, for example `["gcloud", "auth", "print-access-token"]`.
        command: Vec<String>,
        /// How long a printed token is reused before the command is run again.
        ttl: Duration,
    },
    /// A Google service-account key file (JSON with `client_email`, `private_key` (PKCS#8 PEM),
    /// `private_key_id`, `token_uri`).
    ///
    /// An RS256-signed JWT (`iss` = `client_email`, `scope` = scopes joined by spaces,
    /// `aud` = `token_uri`, `iat`, `exp` = `iat` + 3600, header `kid` = `private_key_id`) is
    /// exchanged at `token_uri` (POST form
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT`); the answer
    /// `{access_token, expires_in, token_type}` is cached and refreshed [`REFRESH_MARGIN`]
    /// before expiry.
    ServiceAccount {
        /// Path of the JSON key file.
        key_file: PathBuf,
        /// OAuth2 scopes to ask for; empty means [`AuthConfig::default_scopes`].
        scopes: Vec<String>,
    },
}

impl AuthConfig {
    /// The default scope list: `["https://www.googleapis.com/auth/cloud-platform"]`.
    pub fn default_scopes() -> Vec<String> {
        vec!["https://www.googleapis.com/auth/cloud-platform".to_string()]
    }
}

/// Why a token could not be had.
///
/// Messages name what failed (environment variable, command, key file, token endpoint
/// without its query string, HTTP status and the server's error text); they never contain
/// a token, a private key or a JWT.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The environment variable meant to hold the token is unusable.
    #[error("bearer token environment variable `{var}` {problem}")]
    EnvVar {
        /// Name of the variable.
        var: String,
        /// What is wrong with it, for example "is not set".
        problem: &'static str,
    },
    /// [`AuthConfig::BearerCommand`] has no program to run.
    #[error("bearer token command is empty: it needs at least a program to run")]
    EmptyCommand,
    /// The token command could not be started, or did not finish in time.
    #[error("could not run bearer token command `{command}`: {reason}")]
    CommandRun {
        /// The program (argv\[0\]).
        command: String,
        /// Why it could not run.
        reason: String,
    },
    /// The token command exited unsuccessfully.
    #[error("bearer token command `{command}` failed with {status}; stderr: {stderr}")]
    CommandFailed {
        /// The program (argv\[0\]).
        command: String,
        /// How it exited, for example "exit status 3".
        status: String,
        /// First line of its standard error.
        stderr: String,
    },
    /// The token command succeeded but printed no token.
    #[error("bearer token command `{command}` printed no token ({status}); stderr: {stderr}")]
    CommandNoToken {
        /// The program (argv\[0\]).
        command: String,
        /// How it exited, for example "exit status 0".
        status: String,
        /// First line of its standard error.
        stderr: String,
    },
    /// A token was had but cannot be sent in an HTTP header.
    #[error("the token from {origin} has characters that cannot go in an HTTP header")]
    InvalidToken {
        /// Where the token came from, for example "environment variable `TOKEN`".
        origin: String,
    },
    /// The service-account key file is unreadable or malformed.
    #[error("service account key file {}: {reason}", path.display())]
    KeyFile {
        /// Path of the key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client for token requests could not be built.
    #[error("could not build the HTTP client for token requests: {reason}")]
    HttpClient {
        /// Why.
        reason: String,
    },
    /// The JWT assertion could not be signed.
    #[error("could not sign the JWT assertion for {client_email}: {reason}")]
    Jwt {
        /// The service account.
        client_email: String,
        /// Why.
        reason: String,
    },
    /// The token request did not get an answer.
    #[error("token request to {token_uri} failed: {reason}")]
    TokenRequest {
        /// The token endpoint, without query string.
        token_uri: String,
        /// Why, for example a refused connection or a timeout.
        reason: String,
    },
    /// The token endpoint answered with an HTTP error.
    #[error("token endpoint {token_uri} answered HTTP {status}: {message}")]
    TokenEndpoint {
        /// The token endpoint, without query string.
        token_uri: String,
        /// HTTP status code.
        status: u16,
        /// The server's error text, for example "invalid_grant: Invalid JWT Signature.".
        message: String,
    },
    /// The token endpoint answered 2xx with something that is not a usable token.
    #[error("token endpoint {token_uri} sent an unusable answer: {reason}")]
    TokenResponse {
        /// The token endpoint, without query string.
        token_uri: String,
        /// What is wrong with the answer.
        reason: String,
    },
}

/// Hands out bearer tokens per the config, caching them; cheap to clone (`Arc` inside),
/// `Send + Sync`.
#[derive(Clone)]
pub struct TokenProvider {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    /// The cached token; held across a refresh so that concurrent callers share one fetch.
    cache: Mutex<Option<Cached>>,
}

enum Source {
    None,
    Env { var: String },
    Command { argv: Vec<String>, ttl: Duration },
    ServiceAccount(Box<ServiceAccount>),
}

struct Cached {
    token: Secret,
    /// From then on the next call fetches a new token.
    refresh_at: Instant,
    /// Until then the token may still be handed out when a refresh fails.
    usable_until: Instant,
}

/// A parsed service-account key. Holds no PEM text; `EncodingKey`'s own `Debug` is redacted.
struct ServiceAccount {
    key_file: PathBuf,
    client_email: String,
    private_key_id: Option<String>,
    /// `token_uri` exactly as in the key file: the JWT's `aud`.
    token_uri_raw: String,
    token_uri: reqwest::Url,
    /// `token_uri` without query, fragment or credentials, for messages.
    token_uri_display: String,
    scope: String,
    key: EncodingKey,
    http: reqwest::Client,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl TokenProvider {
    /// Builds a provider, validating the config eagerly: a service-account key file must be
    /// readable and parseable (and its key able to sign), a command non-empty. Fetches nothing.
    pub fn new(config: AuthConfig) -> Result<Self, AuthError> {
        Self::build(config, None)
    }

    /// Like [`TokenProvider::new`], with the HTTP client that service-account token requests
    /// go through (ignored for other configs).
    pub fn with_http_client(
        config: AuthConfig,
        client: reqwest::Client,
    ) -> Result<Self, AuthError> {
        Self::build(config, Some(client))
    }

    fn build(config: AuthConfig, client: Option<reqwest::Client>) -> Result<Self, AuthError> {
        let source = match config {
            AuthConfig::None => Source::None,
            AuthConfig::BearerEnv { var } => {
                if var.is_empty() || var.contains(['=', '\0']) {
                    return Err(AuthError::EnvVar {
                        var,
                        problem: "is not a valid environment variable name",
                    });
                }
                Source::Env { var }
            }
            AuthConfig::BearerCommand { command, ttl } => {
                if command.first().is_none_or(|program| program.is_empty()) {
                    return Err(AuthError::EmptyCommand);
                }
                Source::Command { argv: command, ttl }
            }
            AuthConfig::ServiceAccount { key_file, scopes } => {
                let http =
                    match client {
                        Some(client) => client,
                        None => reqwest::Client::builder().build().map_err(|e| {
                            AuthError::HttpClient {
                                reason: describe_reqwest_error(e),
                            }
                        })?,
                    };
                Source::ServiceAccount(Box::new(ServiceAccount::load(key_file, &scopes, http)?))
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                source,
                cache: Mutex::new(None),
            }),
        })
    }

    /// The current token, refreshing when needed; `None` for [`AuthConfig::None`].
    /// Concurrent callers share one refresh.
    pub async fn token(&self) -> Result<Option<Secret>, AuthError> {
        match &self.inner.source {
            Source::None => Ok(None),
            Source::Env { var } => read_env_token(var).map(Some),
            Source::Command { argv, ttl } => {
                let ttl = *ttl;
                let fetch = async move {
                    let token = run_token_command(argv).await?;
                    tracing::debug!(
                        command = %argv[0],
                        ttl_s = ttl.as_secs_f64(),
                        "fetched bearer token from command, cached for {ttl:?}"
                    );
                    Ok((token, ttl, ttl))
                };
                self.cached(fetch).await.map(Some)
            }
            Source::ServiceAccount(sa) => {
                let fetch = async move {
                    let (token, expires_in) = sa.fetch().await?;
                    tracing::debug!(
                        token_uri = %sa.token_uri_display,
                        client_email = %sa.client_email,
                        expires_in_s = expires_in.as_secs(),
                        "fetched access token, expires in {} s",
                        expires_in.as_secs()
                    );
                    let fresh_for = expires_in.saturating_sub(REFRESH_MARGIN);
                    Ok((token, fresh_for, expires_in.saturating_sub(EXPIRY_SLACK)))
                };
                self.cached(fetch).await.map(Some)
            }
        }
    }

    /// Forget the cached token (called after a 401), so the next call fetches a new one.
    pub async fn invalidate(&self) {
        let mut cache = self.inner.cache.lock().await;
        if cache.take().is_some() {
            tracing::debug!(kind = self.kind(), "cached token invalidated");
        }
    }

    /// Returns the cached token while it is fresh, else runs `fetch` (which yields the token,
    /// how long it stays fresh and how long it stays usable) under the cache lock.
    async fn cached<F>(&self, fetch: F) -> Result<Secret, AuthError>
    where
        F: Future<Output = Result<(Secret, Duration, Duration), AuthError>>,
    {
        let mut cache = self.inner.cache.lock().await;
        if let Some(cached) = cache.as_ref() {
            if Instant::now() < cached.refresh_at {
                tracing::trace!(kind = self.kind(), "using cached token");
                return Ok(cached.token.clone());
            }
        }
        let started = Instant::now();
        match fetch.await {
            Ok((token, fresh_for, usable_for)) => {
                *cache = Some(Cached {
                    token: token.clone(),
                    refresh_at: deadline(started, fresh_for),
                    usable_until: deadline(started, usable_for),
                });
                Ok(token)
            }
            Err(error) => match cache.as_ref() {
                // Still inside the refresh margin: keep serving the old token, try again on
                // the next call.
                Some(cached) if Instant::now() < cached.usable_until => {
                    tracing::warn!(
                        kind = self.kind(),
                        "token refresh failed, using the cached token until it expires: {error}"
                    );
                    Ok(cached.token.clone())
                }
                _ => {
                    *cache = None;
                    Err(error)
                }
            },
        }
    }

    fn kind(&self) -> &'static str {
        match &self.inner.source {
            Source::None => "none",
            Source::Env { .. } => "bearer_env",
            Source::Command { .. } => "bearer_command",
            Source::ServiceAccount(_) => "service_account",
        }
    }
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TokenProvider");
        d.field("kind", &self.kind());
        match &self.inner.source {
            Source::None => {}
            Source::Env { var } => {
                d.field("var", var);
            }
            // Only the program: arguments could hold credentials.
            Source::Command { argv, ttl } => {
                d.field("command", &argv[0]).field("ttl", ttl);
            }
            Source::ServiceAccount(sa) => {
                d.field("key_file", &sa.key_file)
                    .field("client_email", &sa.client_email)
                    .field("token_uri", &sa.token_uri_display)
                    .field("scope", &sa.scope);
            }
        }
        d.finish_non_exhaustive()
    }
}

/// `start + after`, saturating: an `after` too large for an `Instant` (say a `ttl` of
/// `Duration::MAX`) gives a year from `start`.
fn deadline(start: Instant, after: Duration) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    start
        .checked_add(after)
        .or_else(|| start.checked_add(YEAR))
        .unwrap_or(start)
}

fn read_env_token(var: &str) -> Result<Secret, AuthError> {
    let problem = |problem| AuthError::EnvVar {
        var: var.to_string(),
        problem,
    };
    let value = std::env::var(var).map_err(|e| match e {
        std::env::VarError::NotPresent => problem("is not set"),
        std::env::VarError::NotUnicode(_) => problem("is not valid UTF-8"),
    })?;
    let token = value.trim();
    if token.is_empty() {
        return Err(problem("is empty"));
    }
    check_header_safe(token, || format!("environment variable `{var}`"))?;
    tracing::trace!(var, "read bearer token from environment variable");
    Ok(Secret::new(token))
}

async fn run_token_command(argv: &[String]) -> Result<Secret, AuthError> {
    let program = &argv[0];
    let mut command = tokio::process::Command::new(program);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(COMMAND_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            return Err(AuthError::CommandRun {
                command: program.clone(),
                reason: e.to_string(),
            })
        }
        Err(_) => {
            return Err(AuthError::CommandRun {
                command: program.clone(),
                reason: format!(
                    "it did not finish within {} s and was killed",
                    COMMAND_TIMEOUT.as_secs()
                ),
            })
        }
    };
    let status = describe_exit_status(output.status);
    let stderr = first_line(&String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        return Err(AuthError::CommandFailed {
            command: program.clone(),
            status,
            stderr,
        });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let token = stdout.trim_start().lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(AuthError::CommandNoToken {
            command: program.clone(),
            status,
            stderr,
        });
    }
    check_header_safe(token, || format!("command `{program}`"))?;
    Ok(Secret::new(token))
}

fn describe_exit_status(status: std::process::ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("signal {signal}");
        }
    }
    status.to_string()
}

/// The first non-blank line of `text`, trimmed and shortened, or "(empty)".
fn first_line(text: &str) -> String {
    match text.lines().map(str::trim).find(|line| !line.is_empty()) {
        Some(line) => truncate_chars(line, MAX_QUOTED_CHARS),
        None => "(empty)".to_string(),
    }
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Tokens go into an `Authorization` header: only visible ASCII is allowed.
fn check_header_safe(token: &str, origin: impl FnOnce() -> String) -> Result<(), AuthError> {
    if token.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(AuthError::InvalidToken { origin: origin() })
    }
}

impl ServiceAccount {
    fn load(
        key_file: PathBuf,
        scopes: &[String],
        http: reqwest::Client,
    ) -> Result<Self, AuthError> {
        let fail = |reason: String| AuthError::KeyFile {
            path: key_file.clone(),
            reason,
        };
        let bytes = std::fs::read(&key_file).map_err(|e| fail(format!("cannot be read: {e}")))?;
        // Parsed to a `Value` first: serde's "invalid type" messages quote values, which
        // could be key material.
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| fail(format!("is not valid JSON ({})", describe_json_error(&e))))?;
        let object = value
            .as_object()
            .ok_or_else(|| fail("is not a JSON object".to_string()))?;

        if let Some(kind) = object.get("type") {
            match kind.as_str() {
                Some("service_account") => {}
                Some(other) => {
                    return Err(fail(format!(
                        "has type `{}`, not `service_account`",
                        truncate_chars(other, 40)
                    )))
                }
                None => return Err(fail("field `type` is not a string".to_string())),
            }
        }
        let client_email = required_str(object, "client_email").map_err(&fail)?;
        let private_key = required_str(object, "private_key").map_err(&fail)?;
        let private_key_id = optional_str(object, "private_key_id").map_err(&fail)?;
        let token_uri_raw = optional_str(object, "token_uri")
            .map_err(&fail)?
            .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string());

        let token_uri = reqwest::Url::parse(&token_uri_raw)
            .map_err(|e| fail(format!("field `token_uri` is not a URL ({e})")))?;
        if !matches!(token_uri.scheme(), "https" | "http") {
            return Err(fail(format!(
                "field `token_uri` has scheme `{}`, not https",
                token_uri.scheme()
            )));
        }
        let token_uri_display = display_uri(&token_uri);

        let key = EncodingKey::from_rsa_pem(private_key.as_bytes()).map_err(|e| {
            fail(format!(
                "field `private_key` is not an RSA private key in PEM form ({e})"
            ))
        })?;
        // `from_rsa_pem` only unwraps the PEM (a public key passes too); a trial signature
        // checks that the key can really sign.
        jsonwebtoken::crypto::sign(b"ee-predict-client key check", &key, Algorithm::RS256)
            .map_err(|e| fail(format!("field `private_key` cannot sign RS256 ({e})")))?;

        let scope = if scopes.is_empty() {
            AuthConfig::default_scopes().join(" ")
        } else {
            scopes.join(" ")
        };
        Ok(Self {
            key_file,
            client_email,
            private_key_id,
            token_uri_raw,
            token_uri,
            token_uri_display,
            scope,
            key,
            http,
        })
    }

    /// Exchanges a freshly signed JWT for an access token; returns it with its lifetime.
    async fn fetch(&self) -> Result<(Secret, Duration), AuthError> {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            iss: &self.client_email,
            scope: &self.scope,
            aud: &self.token_uri_raw,
            iat,
            exp: iat + JWT_LIFETIME_SECS,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.private_key_id.clone();
        let assertion =
            jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| AuthError::Jwt {
                client_email: self.client_email.clone(),
                reason: e.to_string(),
            })?;
        let body = form_urlencoded(&[("grant_type", JWT_BEARER_GRANT), ("assertion", &assertion)]);

        let request_failed = |e: reqwest::Error| AuthError::TokenRequest {
            token_uri: self.token_uri_display.clone(),
            reason: describe_reqwest_error(e),
        };
        let response = self
            .http
            .post(self.token_uri.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(HTTP_TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(request_failed)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(request_failed)?;

        if !status.is_success() {
            return Err(AuthError::TokenEndpoint {
                token_uri: self.token_uri_display.clone(),
                status: status.as_u16(),
                message: scrub(&endpoint_error_text(&bytes), &assertion),
            });
        }
        parse_token_response(&bytes).map_err(|reason| AuthError::TokenResponse {
            token_uri: self.token_uri_display.clone(),
            reason: scrub(&reason, &assertion),
        })
    }
}

fn required_str(object: &Map<String, Value>, field: &str) -> Result<String, String> {
    optional_str(object, field)?.ok_or_else(|| format!("field `{field}` is missing"))
}

/// A string field; absent, null or empty is `None`, any other type an error.
fn optional_str(object: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("field `{field}` is not a string")),
    }
}

/// A JSON parse error without any quoted content.
fn describe_json_error(e: &serde_json::Error) -> String {
    match e.classify() {
        // Syntax and EOF messages are fixed texts plus a position.
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => e.to_string(),
        _ => format!("at line {} column {}", e.line(), e.column()),
    }
}

/// `uri` without query, fragment or credentials.
fn display_uri(uri: &reqwest::Url) -> String {
    let mut shown = uri.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    // Both fail only for URLs that cannot have credentials, which is fine.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// A reqwest error and its causes, without the URL (which may carry a query string).
fn describe_reqwest_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if e.is_timeout() && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

/// The error text of a token endpoint's error answer: OAuth2 `error: error_description`,
/// Google API `error.message`, else the body itself, shortened.
fn endpoint_error_text(body: &[u8]) -> String {
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) {
        match object.get("error") {
            Some(Value::String(error)) => {
                let text = match object.get("error_description").and_then(Value::as_str) {
                    Some(description) if !description.is_empty() => {
                        format!("{error}: {description}")
                    }
                    _ => error.clone(),
                };
                return truncate_chars(&text, MAX_QUOTED_CHARS);
            }
            Some(Value::Object(error)) => {
                if let Some(message) = error.get("message").and_then(Value::as_str) {
                    return truncate_chars(message, MAX_QUOTED_CHARS);
                }
            }
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        "(empty body)".to_string()
    } else {
        truncate_chars(&text, MAX_QUOTED_CHARS)
    }
}

/// Removes the assertion, and each of its parts, from server text quoted in an error.
fn scrub(text: &str, assertion: &str) -> String {
    let mut text = text.replace(assertion, REDACTED);
    for part in assertion.split('.').filter(|part| part.len() >= 16) {
        text = text.replace(part, REDACTED);
    }
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Reads `{access_token, expires_in, token_type}`; errors never quote the token.
fn parse_token_response(body: &[u8]) -> Result<(Secret, Duration), String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not JSON ({})", describe_json_error(&e)))?;
    let object = value
        .as_object()
        .ok_or_else(|| "the body is not a JSON object".to_string())?;
    let token = match object.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() => token,
        _ => return Err("it has no `access_token` string".to_string()),
    };
    if let Some(token_type) = object.get("token_type") {
        match token_type.as_str() {
            Some(kind) if kind.eq_ignore_ascii_case("bearer") => {}
            Some(kind) => {
                return Err(format!(
                    "its `token_type` is `{}`, not `Bearer`",
                    truncate_chars(kind, 40)
                ))
            }
            None => return Err("its `token_type` is not a string".to_string()),
        }
    }
    let expires_in = match object.get("expires_in") {
        None | Some(Value::Null) => DEFAULT_EXPIRES_IN_SECS,
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| "its `expires_in` is not a whole number of seconds".to_string())?,
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| "its `expires_in` is not a whole number of seconds".to_string())?,
        Some(_) => return Err("its `expires_in` is not a number".to_string()),
    };
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("its `access_token` has characters that cannot go in an HTTP header".into());
    }
    Ok((Secret::new(token.as_str()), Duration::from_secs(expires_in)))
}

/// An `application/x-www-form-urlencoded` body (WHATWG URL standard serializer).
fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        form_urlencode_into(name, &mut out);
        out.push('=');
        form_urlencode_into(value, &mut out);
    }
    out
}

fn form_urlencode_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_body_encodes_grant_type_and_assertion() {
        assert_eq!(
            form_urlencoded(&[("grant_type", JWT_BEARER_GRANT), ("assertion", "a.b-c_d")]),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b-c_d"
        );
        assert_eq!(
            form_urlencoded(&[("k", "a b+c/é~")]),
            "k=a+b%2Bc%2F%C3%A9%7E"
        );
    }

    #[test]
    fn uri_display_drops_query_and_credentials() {
        let uri = reqwest::Url::parse("https://user:pw@example.com/token?key=abc#frag").unwrap();
        assert_eq!(display_uri(&uri), "https://example.com/token");
    }

    #[test]
    fn endpoint_error_text_forms() {
        assert_eq!(
            endpoint_error_text(br#"{"error":"invalid_grant","error_description":"Bad."}"#),
            "invalid_grant: Bad."
        );
        assert_eq!(
            endpoint_error_text(br#"{"error":{"code":403,"message":"denied"}}"#),
            "denied"
        );
        assert_eq!(
            endpoint_error_text(b"  Service\n Unavailable "),
            "Service Unavailable"
        );
        assert_eq!(endpoint_error_text(b""), "(empty body)");
    }

    #[test]
    fn scrub_removes_assertion_and_its_parts() {
        let assertion = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhQGIuYyJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
        let text = format!("bad {assertion} and eyJpc3MiOiJhQGIuYyJ9\nagain");
        let scrubbed = scrub(&text, assertion);
        assert!(!scrubbed.contains("eyJ"), "{scrubbed}");
        assert!(!scrubbed.contains('\n'));
    }

    #[test]
    fn token_response_parsing() {
        let (token, ttl) = parse_token_response(
            br#"{"access_token":"t","expires_in":"42","token_type":"bearer"}"#,
        )
        .unwrap();
        assert_eq!(token.expose(), "t");
        assert_eq!(ttl, Duration::from_secs(42));
        let (_, ttl) = parse_token_response(br#"{"access_token":"t"}"#).unwrap();
        assert_eq!(ttl, Duration::from_secs(DEFAULT_EXPIRES_IN_SECS));
        let error =
            parse_token_response(br#"{"access_token":"sekrit","token_type":"MAC"}"#).unwrap_err();
        assert!(
            error.contains("MAC") && !error.contains("sekrit"),
            "{error}"
        );
        assert!(parse_token_response(br#"{"expires_in":1}"#).is_err());
        assert!(parse_token_response(br#"{"access_token":"a b"}"#).is_err());
        assert!(parse_token_response(b"nope").is_err());
    }

    #[test]
    fn deadline_saturates() {
        let now = Instant::now();
        assert_eq!(
            deadline(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert!(deadline(now, Duration::MAX) > now + Duration::from_secs(3600));
    }

    #[test]
    fn first_line_and_truncation() {
        assert_eq!(first_line("\n  oops  \nmore"), "oops");
        assert_eq!(first_line(""), "(empty)");
        assert_eq!(truncate_chars("ééé", 2), "éé…");
    }
}
