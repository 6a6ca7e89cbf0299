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
//!
//! Each provider's code lives beside this module: `bearer` (the environment variable and the
//! command) and `service_account` (the key file and the JWT exchange).

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

mod bearer;
mod service_account;

use bearer::{read_env_token, run_token_command};
use service_account::{describe_reqwest_error, ServiceAccount};

/// How long before a service-account access token expires it is refreshed.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// A token this close to expiry is no longer handed out, even when a refresh fails.
const EXPIRY_SLACK: Duration = Duration::from_secs(30);
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

#[cfg(test)]
mod tests {
    use super::*;

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
