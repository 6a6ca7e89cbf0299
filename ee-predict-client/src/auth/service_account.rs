//! Google service-account keys: the key file is parsed once, and an RS256-signed JWT is
//! exchanged for an OAuth2 access token at the key's `token_uri` (RFC 7523).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{truncate_chars, AuthConfig, AuthError, Secret, MAX_QUOTED_CHARS, REDACTED};

/// Lifetime of the JWT assertion sent to the token endpoint (the most Google accepts).
const JWT_LIFETIME_SECS: u64 = 3600;
/// OAuth2 grant type for a JWT bearer assertion (RFC 7523).
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google's token endpoint, used when a key file names none.
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Lifetime assumed when a token endpoint's answer has no `expires_in`.
const DEFAULT_EXPIRES_IN_SECS: u64 = 3600;
/// Time limit of one token request, connection included.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A parsed service-account key. Holds no PEM text; `EncodingKey`'s own `Debug` is redacted.
pub(super) struct ServiceAccount {
    pub(super) key_file: PathBuf,
    pub(super) client_email: String,
    private_key_id: Option<String>,
    /// `token_uri` exactly as in the key file: the JWT's `aud`.
    token_uri_raw: String,
    token_uri: reqwest::Url,
    /// `token_uri` without query, fragment or credentials, for messages.
    pub(super) token_uri_display: String,
    pub(super) scope: String,
    key: EncodingKey,
    http: reqwest::Client,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    pub(super) scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl ServiceAccount {
    pub(super) fn load(
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
    pub(super) async fn fetch(&self) -> Result<(Secret, Duration), AuthError> {
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
pub(super) fn describe_reqwest_error(e: reqwest::Error) -> String {
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
}
