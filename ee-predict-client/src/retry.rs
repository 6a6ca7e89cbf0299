//! The retry policy, in one place. Transports report what happened on an attempt (an HTTP
//! status with its `Retry-After`, a reqwest error, a gRPC status, an answer that does not
//! decode); this module turns it into a [`Failure`] carrying a typed [`Decision`], and the
//! client's loop acts on the decision alone.
//!
//! The policy (SPEC §5):
//!
//! | what happened                                   | decision                                   |
//! |-------------------------------------------------|--------------------------------------------|
//! | 429, 503, 504, 408; `RESOURCE_EXHAUSTED`, `UNAVAILABLE`, a timeout | retry until the budget is spent, lowering the concurrency |
//! | 502; `ABORTED`, `CANCELLED`; a connection dropped mid-request | retry until the budget is spent |
//! | other 5xx; `INTERNAL`, `UNKNOWN`, `DATA_LOSS`; a truncated or garbled answer | retry `max_bounded_retries` times |
//! | connection refused, DNS failure, connect timeout, TLS handshake | retry for `connect_timeout`, then fail naming the URL |
//! | 401 / `UNAUTHENTICATED`                          | fail (and drop the cached token)           |
//! | 403 / `PERMISSION_DENIED`                        | fail                                       |
//! | 400, 404, 501 and every other status; `INVALID_ARGUMENT`, `NOT_FOUND`... | fail with the server's message |
//! | an answer that does not fit the declared outputs | fail                                       |
//! | a request the HTTP stack cannot build            | fail                                       |
//!
//! `Retry-After` (delay seconds or an HTTP date) is honoured on every retryable status; it is
//! parsed with saturating arithmetic, and the client caps it at the total budget.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What happened on a failed attempt; labels metrics (see [`Cause::label`]) and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The server answered this HTTP status.
    Http(u16),
    /// The server answered this gRPC status code.
    #[cfg(feature = "grpc")]
    Grpc(tonic::Code),
    /// No answer within the attempt's deadline.
    Timeout,
    /// The connection dropped before the answer came.
    Reset,
    /// The server could not be reached: connection refused, no route, DNS failure, the
    /// connect timed out or the TLS handshake failed.
    Unreachable,
    /// The answer's body ended early.
    Truncated,
    /// The answer's bytes could not be parsed.
    Malformed,
    /// The answer parsed but does not fit the declared outputs.
    Answer,
    /// The answer carries the server's error instead of predictions.
    ServerError,
    /// The request could not be built or sent by this client.
    Request,
}

impl Cause {
    /// The short label metrics count retries under: the status code (`429`), the gRPC code
    /// name (`ResourceExhausted`), or `timeout`, `reset`, `unreachable`, `truncated answer`,
    /// `malformed answer`...
    pub fn label(&self) -> String {
        match self {
            Cause::Http(code) => code.to_string(),
            #[cfg(feature = "grpc")]
            Cause::Grpc(code) => format!("{code:?}"),
            Cause::Timeout => "timeout".into(),
            Cause::Reset => "reset".into(),
            Cause::Unreachable => "unreachable".into(),
            Cause::Truncated => "truncated answer".into(),
            Cause::Malformed => "malformed answer".into(),
            Cause::Answer => "answer".into(),
            Cause::ServerError => "error in answer".into(),
            Cause::Request => "request".into(),
        }
    }
}

impl fmt::Display for Cause {
    /// The label, with the reason phrase for HTTP statuses (`400 Bad Request`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Http(code) => {
                match reqwest::StatusCode::from_u16(*code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                {
                    Some(reason) => write!(f, "{code} {reason}"),
                    None => write!(f, "{code}"),
                }
            }
            other => f.write_str(&other.label()),
        }
    }
}

/// How long a retryable failure may go on being retried. Every kind also stops when the
/// client's total budget is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Until `ClientConfig::total_budget` is spent: overload, gateway errors, resets, timeouts.
    Budget,
    /// At most `ClientConfig::max_bounded_retries` times: 500s and garbled answers, which a
    /// broken model can produce forever.
    Count,
    /// While the server has been unreachable for less than `ClientConfig::connect_timeout`.
    Connect,
}

/// Why a failure is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fatal {
    /// 401 / `UNAUTHENTICATED`: the token was refused; the client drops its cached token so
    /// the next request fetches a fresh one.
    Unauthenticated,
    /// 403 / `PERMISSION_DENIED`: the credentials are good but lack the permission.
    PermissionDenied,
    /// The server refused the request itself (400 bad input, 404 no such model, 413...):
    /// sending it again cannot help.
    Rejected,
    /// The answer does not fit the declared outputs (count, dtype, shape, names), or carries
    /// the server's error.
    Answer,
    /// This client could not build or send the request (a URL or header the HTTP stack
    /// refuses, a redirect loop).
    Client,
}

/// What the client does after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Wait (backoff, or longer if the server asked) and try again.
    Retry {
        /// The failure signals node pressure: lower the concurrency.
        overload: bool,
        /// How long this kind may go on.
        limit: Limit,
        /// The server asked for this wait (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Give up and report.
    Fatal(Fatal),
}

/// A failed attempt: what happened, what to do, and the details for messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// What happened.
    pub cause: Cause,
    /// What to do about it.
    pub decision: Decision,
    /// The server's message or the error's text (never a token or a URL's credentials).
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.cause, self.message)
    }
}

impl Failure {
    /// An unusable answer (wrong count, dtype, shape or names): final.
    pub(crate) fn answer(message: impl Into<String>) -> Self {
        Failure {
            cause: Cause::Answer,
            decision: Decision::Fatal(Fatal::Answer),
            message: message.into(),
        }
    }

    /// A request this client cannot send: final.
    pub(crate) fn client(message: impl Into<String>) -> Self {
        Failure {
            cause: Cause::Request,
            decision: Decision::Fatal(Fatal::Client),
            message: message.into(),
        }
    }

    /// No answer within `deadline`: retried under the budget, lowering the concurrency.
    #[cfg(feature = "grpc")]
    pub(crate) fn timeout(deadline: Duration) -> Self {
        Failure {
            cause: Cause::Timeout,
            decision: retry(true, Limit::Budget, None),
            message: format!("no answer within {deadline:?}"),
        }
    }
}

fn retry(overload: bool, limit: Limit, retry_after: Option<Duration>) -> Decision {
    Decision::Retry {
        overload,
        limit,
        retry_after,
    }
}

/// The decision for a non-success HTTP status.
pub fn for_status(status: u16, retry_after: Option<Duration>) -> Decision {
    match status {
        429 | 503 | 504 | 408 => retry(true, Limit::Budget, retry_after),
        502 => retry(false, Limit::Budget, retry_after),
        401 => Decision::Fatal(Fatal::Unauthenticated),
        403 => Decision::Fatal(Fatal::PermissionDenied),
        // Not Implemented, HTTP Version Not Supported: the same request never works.
        501 | 505 => Decision::Fatal(Fatal::Rejected),
        500..=599 => retry(false, Limit::Count, retry_after),
        _ => Decision::Fatal(Fatal::Rejected),
    }
}

/// The failure for a non-success HTTP status, with the raw `Retry-After` header value and
/// the server's message.
pub(crate) fn status_failure(status: u16, retry_after: Option<&str>, message: String) -> Failure {
    let retry_after = retry_after.and_then(|v| parse_retry_after(v, SystemTime::now()));
    Failure {
        cause: Cause::Http(status),
        decision: for_status(status, retry_after),
        message,
    }
}

/// The cause and decision for a reqwest error (no status: the request did not get an answer).
pub fn for_reqwest(e: &reqwest::Error) -> (Cause, Decision) {
    if e.is_builder() {
        (Cause::Request, Decision::Fatal(Fatal::Client))
    } else if e.is_connect() {
        // Refused, DNS, connect timeout, TLS handshake: the server is not there (yet).
        (Cause::Unreachable, retry(false, Limit::Connect, None))
    } else if e.is_timeout() {
        (Cause::Timeout, retry(true, Limit::Budget, None))
    } else if e.is_body() || e.is_decode() {
        (Cause::Truncated, retry(false, Limit::Count, None))
    } else if e.is_request() {
        // Connected, then the connection dropped before the answer.
        (Cause::Reset, retry(false, Limit::Budget, None))
    } else {
        // Redirect loops, upgrades, anything else: not a transient condition.
        (Cause::Request, Decision::Fatal(Fatal::Client))
    }
}

/// The failure for a reqwest error. The message is the error's chain of causes without the
/// URL (callers name the URL themselves, without its credentials).
pub(crate) fn reqwest_failure(e: reqwest::Error) -> Failure {
    let (cause, decision) = for_reqwest(&e);
    Failure {
        cause,
        decision,
        message: error_chain(&e.without_url()),
    }
}

/// An error and its sources, `: `-separated.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let text = inner.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = inner.source();
    }
    s
}

/// The cause and decision for a gRPC status code.
#[cfg(feature = "grpc")]
pub fn for_code(code: tonic::Code, retry_after: Option<Duration>) -> (Cause, Decision) {
    use tonic::Code;
    let decision = match code {
        Code::ResourceExhausted | Code::Unavailable => retry(true, Limit::Budget, retry_after),
        Code::DeadlineExceeded => return (Cause::Timeout, retry(true, Limit::Budget, None)),
        Code::Aborted | Code::Cancelled => retry(false, Limit::Budget, retry_after),
        Code::Internal | Code::Unknown | Code::DataLoss => retry(false, Limit::Count, retry_after),
        Code::Unauthenticated => Decision::Fatal(Fatal::Unauthenticated),
        Code::PermissionDenied => Decision::Fatal(Fatal::PermissionDenied),
        Code::Ok
        | Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented => Decision::Fatal(Fatal::Rejected),
    };
    (Cause::Grpc(code), decision)
}

/// The failure for a gRPC status: `UNAVAILABLE` because the channel could not connect is
/// [`Cause::Unreachable`]; servers under pressure (ee-model serve among them) say when to
/// come back in `retry-after` metadata.
#[cfg(feature = "grpc")]
pub(crate) fn grpc_failure(s: &tonic::Status) -> Failure {
    let message = s.message().to_string();
    let mut source = std::error::Error::source(s);
    while let Some(e) = source {
        if e.is::<tonic::ConnectError>() {
            return Failure {
                cause: Cause::Unreachable,
                decision: retry(false, Limit::Connect, None),
                message: error_chain(e),
            };
        }
        source = e.source();
    }
    let retry_after = s
        .metadata()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let (cause, decision) = for_code(s.code(), retry_after);
    Failure {
        cause,
        decision,
        message,
    }
}

/// The failure for an answer that did not decode: damaged bytes are retried a few times, an
/// answer that is well-formed but wrong (dtype, names, the server's own error) is final.
pub(crate) fn decode_failure(e: ee_tensor_proto::Error) -> Failure {
    use ee_tensor_proto::Error as E;
    match e {
        E::ServerError { message } => Failure {
            cause: Cause::ServerError,
            decision: Decision::Fatal(Fatal::Answer),
            message,
        },
        E::DtypeMismatch { .. } => Failure::answer(e.to_string()),
        E::Payload { .. } if !is_garbled(&e) => Failure::answer(e.to_string()),
        other => Failure {
            cause: Cause::Malformed,
            decision: retry(false, Limit::Count, None),
            message: other.to_string(),
        },
    }
}

/// True for payload errors that come from damaged bytes rather than a wrong model answer.
/// (`ee_tensor_proto` reports both as `Payload` errors; the wording tells them apart.)
fn is_garbled(e: &ee_tensor_proto::Error) -> bool {
    let text = e.to_string();
    [
        "truncated",
        "bytes remain",
        "binary_data_size",
        "has no",
        "malformed",
    ]
    .iter()
    .any(|k| text.contains(k))
}

/// Parses a `Retry-After` value, delay seconds or an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), into the wait from `now`. Saturating: seconds past
/// `u64` and dates past any representable time give `Duration::MAX` (the client caps the wait
/// at its budget); dates in the past give zero. `None` for anything else.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(v.parse::<u64>().map_or(Duration::MAX, Duration::from_secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    }
    let when = http_date_seconds(v)?;
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::from(d.as_secs()),
        Err(e) => -i128::from(e.duration().as_secs()),
    };
    let ahead = when - now;
    Some(if ahead <= 0 {
        Duration::ZERO
    } else {
        Duration::from_secs(u64::try_from(ahead).unwrap_or(u64::MAX))
    })
}

/// Seconds since the Unix epoch of an IMF-fixdate, in `i128` so that no year overflows.
fn http_date_seconds(s: &str) -> Option<i128> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i128
        + 1;
    let day: i128 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let year: i128 = year.parse::<i64>().ok()?.into();
    let hms: Vec<i128> = time
        .split(':')
        .map(|p| p.parse::<u8>().ok().map(i128::from))
        .collect::<Option<_>>()?;
    let [h @ 0..=23, mi @ 0..=59, se @ 0..=60] = hms.as_slice() else {
        return None;
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_WAIT: Option<Duration> = None;

    fn r(overload: bool, limit: Limit) -> Decision {
        retry(overload, limit, None)
    }

    #[test]
    fn http_statuses_map_to_decisions() {
        use Fatal::*;
        use Limit::*;
        let table: &[(u16, Decision)] = &[
            (400, Decision::Fatal(Rejected)),
            (401, Decision::Fatal(Unauthenticated)),
            (403, Decision::Fatal(PermissionDenied)),
            (404, Decision::Fatal(Rejected)),
            (405, Decision::Fatal(Rejected)),
            (408, r(true, Budget)),
            (409, Decision::Fatal(Rejected)),
            (413, Decision::Fatal(Rejected)),
            (422, Decision::Fatal(Rejected)),
            (429, r(true, Budget)),
            (500, r(false, Count)),
            (501, Decision::Fatal(Rejected)),
            (502, r(false, Budget)),
            (503, r(true, Budget)),
            (504, r(true, Budget)),
            (505, Decision::Fatal(Rejected)),
            (507, r(false, Count)),
            (599, r(false, Count)),
            (302, Decision::Fatal(Rejected)),
        ];
        for (status, expected) in table {
            assert_eq!(for_status(*status, NO_WAIT), *expected, "status {status}");
        }
    }

    #[test]
    fn retry_after_rides_on_every_retryable_status_and_no_fatal_one() {
        let wait = Some(Duration::from_secs(7));
        for status in [408, 429, 500, 502, 503, 504] {
            let Decision::Retry { retry_after, .. } = for_status(status, wait) else {
                panic!("{status} is retryable");
            };
            assert_eq!(retry_after, wait, "status {status}");
        }
        for status in [400, 401, 403, 404] {
            assert!(matches!(for_status(status, wait), Decision::Fatal(_)));
        }
    }

    #[test]
    fn status_failures_carry_the_label_and_the_servers_message() {
        let f = status_failure(
            400,
            None,
            "Input to reshape is a tensor with 12 values".into(),
        );
        assert_eq!(f.cause.to_string(), "400 Bad Request");
        assert_eq!(f.cause.label(), "400");
        assert_eq!(
            f.to_string(),
            "400 Bad Request: Input to reshape is a tensor with 12 values"
        );
        let f = status_failure(503, Some("3"), "busy".into());
        assert_eq!(
            f.decision,
            retry(true, Limit::Budget, Some(Duration::from_secs(3)))
        );
        assert_eq!(Cause::Http(599).to_string(), "599");
    }

    #[cfg(feature = "grpc")]
    #[test]
    fn grpc_codes_map_to_decisions() {
        use tonic::Code;
        use Fatal::*;
        use Limit::*;
        let table: &[(Code, Cause, Decision)] = &[
            (Code::Ok, Cause::Grpc(Code::Ok), Decision::Fatal(Rejected)),
            (
                Code::Cancelled,
                Cause::Grpc(Code::Cancelled),
                r(false, Budget),
            ),
            (Code::Unknown, Cause::Grpc(Code::Unknown), r(false, Count)),
            (
                Code::InvalidArgument,
                Cause::Grpc(Code::InvalidArgument),
                Decision::Fatal(Rejected),
            ),
            (Code::DeadlineExceeded, Cause::Timeout, r(true, Budget)),
            (
                Code::NotFound,
                Cause::Grpc(Code::NotFound),
                Decision::Fatal(Rejected),
            ),
            (
                Code::AlreadyExists,
                Cause::Grpc(Code::AlreadyExists),
                Decision::Fatal(Rejected),
            ),
            (
                Code::PermissionDenied,
                Cause::Grpc(Code::PermissionDenied),
                Decision::Fatal(PermissionDenied),
            ),
            (
                Code::ResourceExhausted,
                Cause::Grpc(Code::ResourceExhausted),
                r(true, Budget),
            ),
            (
                Code::FailedPrecondition,
                Cause::Grpc(Code::FailedPrecondition),
                Decision::Fatal(Rejected),
            ),
            (Code::Aborted, Cause::Grpc(Code::Aborted), r(false, Budget)),
            (
                Code::OutOfRange,
                Cause::Grpc(Code::OutOfRange),
                Decision::Fatal(Rejected),
            ),
            (
                Code::Unimplemented,
                Cause::Grpc(Code::Unimplemented),
                Decision::Fatal(Rejected),
            ),
            (Code::Internal, Cause::Grpc(Code::Internal), r(false, Count)),
            (
                Code::Unavailable,
                Cause::Grpc(Code::Unavailable),
                r(true, Budget),
            ),
            (Code::DataLoss, Cause::Grpc(Code::DataLoss), r(false, Count)),
            (
                Code::Unauthenticated,
                Cause::Grpc(Code::Unauthenticated),
                Decision::Fatal(Unauthenticated),
            ),
        ];
        assert_eq!(table.len(), 17, "every gRPC code");
        for (code, cause, decision) in table {
            assert_eq!(for_code(*code, NO_WAIT), (*cause, *decision), "{code:?}");
        }
    }

    #[cfg(feature = "grpc")]
    #[test]
    fn grpc_statuses_carry_retry_after_and_connect_errors_are_unreachable() {
        let mut s = tonic::Status::resource_exhausted("busy");
        s.metadata_mut().insert("retry-after", "3".parse().unwrap());
        let f = grpc_failure(&s);
        assert_eq!(f.cause.label(), "ResourceExhausted");
        assert_eq!(
            f.decision,
            retry(true, Limit::Budget, Some(Duration::from_secs(3)))
        );
        // What tonic's channel reports when nothing listens: UNAVAILABLE with a ConnectError.
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let s = tonic::Status::from_error(Box::new(tonic::ConnectError(Box::new(refused))));
        assert_eq!(s.code(), tonic::Code::Unavailable);
        let f = grpc_failure(&s);
        assert_eq!(f.cause, Cause::Unreachable);
        assert_eq!(f.decision, r(false, Limit::Connect));
        assert!(f.message.contains("refused"), "{f}");
    }

    #[test]
    fn decode_errors_split_into_garbled_and_wrong() {
        let garbled = ee_tensor_proto::Error::Json {
            offset: 3,
            message: "EOF".into(),
        };
        assert_eq!(decode_failure(garbled).decision, r(false, Limit::Count));
        let wrong = ee_tensor_proto::Error::DtypeMismatch {
            context: "output \"out\"".into(),
            expected: ee_tensor_proto::DataType::Float32,
            found: ee_tensor_proto::DataType::Uint8,
        };
        assert_eq!(
            decode_failure(wrong).decision,
            Decision::Fatal(Fatal::Answer)
        );
        let server = ee_tensor_proto::Error::ServerError {
            message: "OOM".into(),
        };
        let f = decode_failure(server);
        assert_eq!(
            (f.cause, f.decision),
            (Cause::ServerError, Decision::Fatal(Fatal::Answer))
        );
    }

    /// 2024-11-06T08:49:37Z.
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_730_882_977)
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let table: &[(&str, Option<Duration>)] = &[
            ("2", Some(Duration::from_secs(2))),
            (" 0 ", Some(Duration::ZERO)),
            ("1.5", Some(Duration::from_millis(1500))),
            ("18446744073709551615", Some(Duration::from_secs(u64::MAX))),
            ("18446744073709551616", Some(Duration::MAX)),
            ("99999999999999999999999999999", Some(Duration::MAX)),
            ("1e30", Some(Duration::MAX)),
            ("1e400", None),
            ("-1", None),
            ("NaN", None),
            ("inf", None),
            ("", None),
            ("soon", None),
            // Ten seconds ahead of `now`.
            (
                "Wed, 06 Nov 2024 08:49:47 GMT",
                Some(Duration::from_secs(10)),
            ),
            // In the past: come back at once.
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(Duration::ZERO)),
            ("Mon, 01 Jan 0001 00:00:00 GMT", Some(Duration::ZERO)),
            (
                "Sun, 06 Nov -9223372036854775808 08:49:37 GMT",
                Some(Duration::ZERO),
            ),
            // Far future: exact while it fits, saturating past it.
            (
                "Fri, 31 Dec 9999 23:59:59 GMT",
                Some(Duration::from_secs(253_402_300_799 - 1_730_882_977)),
            ),
            (
                "Sun, 06 Nov 9223372036854775807 08:49:37 GMT",
                Some(Duration::from_secs(u64::MAX)),
            ),
            // Fields out of range are not a date (and cannot overflow).
            ("Sun, 06 Nov 2024 9223372036854775807:49:37 GMT", None),
            ("Sun, 99999999999999999999 Nov 2024 08:49:37 GMT", None),
            ("Sun, 32 Nov 2024 08:49:37 GMT", None),
            ("Sun, 06 Nov 2024 08:61:37 GMT", None),
            ("Sun, 06 Foo 2024 08:49:37 GMT", None),
            ("Sun, 06 Nov 2024 08:49:37 PST", None),
        ];
        for (value, expected) in table {
            assert_eq!(parse_retry_after(value, now()), *expected, "{value:?}");
        }
        assert_eq!(
            http_date_seconds("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
    }
}
