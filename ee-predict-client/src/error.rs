//! The crate's error type. Messages name the URL (without credentials), the tiles concerned
//! and the server's own message; they never contain a token.

use std::time::Duration;

/// Everything that can go wrong sending predictions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A predictor description that cannot work (with the reason and what to do).
    #[error("predictor configuration: {0}")]
    Config(String),
    /// A URL that cannot be used (no scheme, a scheme this client does not speak, no host),
    /// caught at construction.
    #[error("predictor configuration: `{field}` {url:?} cannot be used: {reason}")]
    Url {
        /// The field it came from (`url` or `baseUrl`, as a spec names them).
        field: &'static str,
        /// The URL, without credentials.
        url: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// One instance alone encodes to more than the payload budget.
    #[error("{tile} alone encodes to {bytes} bytes, above the payload budget of {budget} bytes{suggestion}")]
    TileTooLarge {
        /// The tile.
        tile: String,
        /// Its encoded size (scaled by the output multiplier).
        bytes: usize,
        /// The budget.
        budget: usize,
        /// A tile size that would fit, when one can be suggested.
        suggestion: String,
    },
    /// The server refused the request for good (400, 401, 403, 404, ...).
    #[error("{url} answered {status} for {tiles}: {message}")]
    Rejected {
        /// Endpoint, without credentials.
        url: String,
        /// HTTP status (or gRPC code name).
        status: String,
        /// What was asked: `tiles` and their labels, or the model's metadata.
        tiles: String,
        /// The server's message.
        message: String,
    },
    /// Retries ran out (budget, or the bounded count for 500s and malformed answers).
    #[error("{url}: giving up on {tiles} after {attempts} attempts over {elapsed:?}: {last}")]
    Exhausted {
        /// Endpoint, without credentials.
        url: String,
        /// What was asked: `tiles` and their labels, or the model's metadata.
        tiles: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last failure.
        last: String,
    },
    /// The server could not be reached (connection refused, DNS, connect timeout, TLS
    /// handshake) for longer than `ClientConfig::connect_timeout`.
    #[error("{url} could not be reached for {tiles}: {attempts} attempts over {elapsed:?} (connect_timeout {connect_timeout:?}); last: {last}")]
    Unreachable {
        /// Endpoint, without credentials.
        url: String,
        /// What was asked: `tiles` and their labels, or the model's metadata.
        tiles: String,
        /// Attempts made.
        attempts: u32,
        /// How long the server was unreachable.
        elapsed: Duration,
        /// The configured limit.
        connect_timeout: Duration,
        /// The last failure.
        last: String,
    },
    /// The answer could not be read as the declared outputs.
    #[error("{url}: answer for {tiles} does not fit the declared outputs: {message}")]
    Answer {
        /// Endpoint, without credentials.
        url: String,
        /// What was asked: `tiles` and their labels, or the model's metadata.
        tiles: String,
        /// What did not fit.
        message: String,
    },
    /// What the job would send does not fit what the server says the model takes (checked
    /// once, before any tile is read).
    #[error("{url}: the model does not take what the job would send: {}", crate::metadata::join(.problems))]
    ModelInputs {
        /// Endpoint, without credentials.
        url: String,
        /// Each mismatch.
        problems: Vec<crate::metadata::InputProblem>,
    },
    /// Getting a token failed.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// Encoding a request failed.
    #[error("encoding the request: {0}")]
    Encode(#[from] ee_tensor_proto::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
