//! The crate's error type. Messages name the URL (without credentials), the tiles concerned
//! and the server's own message; they never contain a token.

use std::time::Duration;

/// Everything that can go wrong sending predictions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A predictor description that cannot work (with the reason and what to do).
    #[error("predictor configuration: {0}")]
    Config(String),
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
    #[error("{url} answered {status} for tiles {tiles}: {message}")]
    Rejected {
        /// Endpoint, without credentials.
        url: String,
        /// HTTP status (or gRPC code name).
        status: String,
        /// Tiles in the request.
        tiles: String,
        /// The server's message.
        message: String,
    },
    /// Retries ran out (budget, or the bounded count for 500s and malformed answers).
    #[error(
        "{url}: giving up on tiles {tiles} after {attempts} attempts over {elapsed:?}: {last}"
    )]
    Exhausted {
        /// Endpoint, without credentials.
        url: String,
        /// Tiles in the request.
        tiles: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last failure.
        last: String,
    },
    /// The answer could not be read as the declared outputs.
    #[error("{url}: answer for tiles {tiles} does not fit the declared outputs: {message}")]
    Answer {
        /// Endpoint, without credentials.
        url: String,
        /// Tiles in the request.
        tiles: String,
        /// What did not fit.
        message: String,
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
