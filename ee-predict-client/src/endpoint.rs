//! Where predictions go: the predictor kinds of Earth Engine and the open serving engines,
//! their URLs (every base URL can be overridden), and which payload formats each speaks.

use ee_tensor_proto::PayloadFormat;

use crate::metadata::Protocol;
use crate::{Error, Result};

/// A TF Serving model version: a number or a label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelVersion {
    /// `/versions/N`.
    Number(i64),
    /// `/labels/L`.
    Label(String),
}

/// A model endpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum Endpoint {
    /// AI Platform (Cloud ML Engine) online prediction.
    AiPlatform {
        /// GCP project.
        project: String,
        /// Model name.
        model: String,
        /// Version, or the default version.
        version: Option<String>,
        /// Region (regional endpoint), e.g. `us-central1`.
        region: String,
    },
    /// Vertex AI endpoint, `projects/P/locations/R/endpoints/ID`.
    Vertex {
        /// The endpoint's resource name.
        endpoint: String,
        /// Use `:rawPredict` (body sent as is) instead of `:predict`.
        raw_predict: bool,
    },
    /// TensorFlow Serving, REST or gRPC by payload format.
    TfServing {
        /// Server address, e.g. `http://127.0.0.1:8501` (REST) or `http://127.0.0.1:8500` (gRPC).
        url: String,
        /// Model name.
        model: String,
        /// Version or label.
        version: Option<ModelVersion>,
        /// Signature, when not `serving_default`.
        signature: Option<String>,
    },
    /// An Open Inference Protocol (KServe v2, Triton, MLServer) server.
    KServeV2 {
        /// Server address.
        url: String,
        /// Model name.
        model: String,
        /// Model version.
        version: Option<String>,
    },
    /// Any URL the body is POSTed to as is.
    Url(String),
}

/// An endpoint, how to reach it, and the payload format to use.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictorConfig {
    /// The model endpoint.
    pub endpoint: Endpoint,
    /// Overrides the scheme and host of hosted endpoints (private endpoints, loopback tests).
    pub base_url: Option<String>,
    /// Payload format.
    pub format: PayloadFormat,
}

/// The default region of hosted endpoints.
pub const DEFAULT_REGION: &str = "us-central1";

fn check_region(region: &str) -> Result<()> {
    if region.eq_ignore_ascii_case("global") {
        return Err(Error::Config(
            "region \"global\" has no online prediction endpoint: AI Platform and Vertex AI serve predictions from regional endpoints (https://REGION-ml.googleapis.com, https://REGION-aiplatform.googleapis.com); give the region the model is deployed in, e.g. us-central1".into(),
        ));
    }
    if region.is_empty()
        || !region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(Error::Config(format!(
            "region {region:?} is not a region name like us-central1"
        )));
    }
    Ok(())
}

fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// A URL without user info or query, for messages.
pub fn display_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = rest
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .unwrap_or((rest, String::new()));
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// What a URL is for: REST takes `http` and `https`; gRPC takes `http` and `grpc` (both
/// plaintext: this client has no TLS for gRPC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UrlKind {
    Rest,
    Grpc,
}

/// Checks a URL at construction, so that a URL that cannot work fails before any request
/// rather than being retried: a scheme this client speaks, and a host. Returns the URL to use
/// (`grpc://` becomes `http://`). Errors name the field and the URL without its credentials.
pub(crate) fn check_url(field: &'static str, url: &str, kind: UrlKind) -> Result<String> {
    let refuse = |reason: String| Error::Url {
        field,
        url: display_url(url),
        reason,
    };
    let example = match kind {
        UrlKind::Rest => "http:// or https://",
        UrlKind::Grpc => "http:// (plaintext gRPC)",
    };
    let Some((scheme, rest)) = url.trim().split_once("://") else {
        let shown = display_url(url);
        let fix = match kind {
            UrlKind::Rest => format!("http://{shown} or https://{shown}"),
            UrlKind::Grpc => format!("http://{shown}"),
        };
        return Err(refuse(format!(
            "it has no scheme; write the address as {fix}"
        )));
    };
    let scheme = scheme.to_ascii_lowercase();
    let usable = match (kind, scheme.as_str()) {
        (UrlKind::Rest, "http" | "https") => format!("{scheme}://{rest}"),
        (UrlKind::Grpc, "http" | "grpc") => format!("http://{rest}"),
        (UrlKind::Grpc, "https" | "grpcs") => {
            return Err(refuse(
                "gRPC over TLS is not built into this client; use http:// for a plaintext gRPC port, or a REST payload format over https://".into(),
            ))
        }
        _ => {
            return Err(refuse(format!(
                "scheme {scheme:?} is not one this client speaks; use {example}"
            )))
        }
    };
    let parsed = reqwest::Url::parse(&usable).map_err(|e| refuse(e.to_string()))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(refuse("it names no host".into()));
    }
    if kind == UrlKind::Grpc && !matches!(parsed.path(), "" | "/") {
        return Err(refuse(format!(
            "a gRPC address is a host and port, without a path ({})",
            parsed.path()
        )));
    }
    Ok(usable)
}

/// TF Serving's route of a model: `v1/models/NAME[/versions/N | /labels/LABEL]`.
fn tf_serving_path(model: &str, version: &Option<ModelVersion>) -> String {
    let mut path = format!("v1/models/{model}");
    match version {
        Some(ModelVersion::Number(n)) => path.push_str(&format!("/versions/{n}")),
        Some(ModelVersion::Label(l)) => path.push_str(&format!("/labels/{l}")),
        None => {}
    }
    path
}

/// KServe v2's route of a model: `v2/models/NAME[/versions/V]`.
fn kserve_path(model: &str, version: &Option<String>) -> String {
    let mut path = format!("v2/models/{model}");
    if let Some(v) = version {
        path.push_str(&format!("/versions/{v}"));
    }
    path
}

impl PredictorConfig {
    /// The address the user gave (`base_url` if set, else the endpoint's own), with the spec
    /// field it came from.
    fn address<'a>(&'a self, own: &'a str) -> (&'static str, &'a str) {
        match &self.base_url {
            Some(b) => ("baseUrl", b.as_str()),
            None => ("url", own),
        }
    }

    /// [`Self::address`], checked as a URL of `kind`.
    fn checked_address(&self, own: &str, kind: UrlKind) -> Result<String> {
        let (field, base) = self.address(own);
        check_url(field, base, kind)
    }

    /// Checks `base_url` when it overrides a hosted endpoint.
    fn hosted_base(&self, default: String) -> Result<String> {
        match &self.base_url {
            Some(b) => check_url("baseUrl", b, UrlKind::Rest),
            None => Ok(default),
        }
    }

    /// Where the server describes the model over REST (the protocol and the URL), for the
    /// formats that send inputs as the tensors the model takes; otherwise why not.
    pub(crate) fn metadata_url(&self) -> std::result::Result<(Protocol, String), String> {
        let f = self.format;
        match &self.endpoint {
            Endpoint::AiPlatform { .. } | Endpoint::Vertex { .. } => Err(
                "AI Platform and Vertex AI endpoints do not describe their models' inputs".into(),
            ),
            Endpoint::Url(_) => Err("a plain URL predictor has no metadata route".into()),
            _ if f.is_grpc() => Err(format!("{f} is sent over gRPC")),
            Endpoint::TfServing {
                url,
                model,
                version,
                ..
            } => {
                if f != PayloadFormat::TfServingJson {
                    return Err(format!(
                        "{f} sends each input as a serialized tensor (a string), not the tensor the model's signature describes"
                    ));
                }
                let base = self
                    .checked_address(url, UrlKind::Rest)
                    .map_err(|e| e.to_string())?;
                let path = tf_serving_path(model, version);
                Ok((
                    Protocol::TfServing,
                    join(&base, &format!("{path}/metadata")),
                ))
            }
            Endpoint::KServeV2 {
                url,
                model,
                version,
            } => {
                let base = self
                    .checked_address(url, UrlKind::Rest)
                    .map_err(|e| e.to_string())?;
                Ok((
                    Protocol::KServeV2,
                    join(&base, &kserve_path(model, version)),
                ))
            }
        }
    }

    /// Checks the combination and returns the URL requests go to (REST) or the server
    /// address (gRPC). A URL without a scheme this client speaks, or without a host, is an
    /// error naming the field (`url` or `baseUrl`) and the URL without its credentials.
    pub fn url(&self) -> Result<String> {
        let f = self.format;
        let http_formats = [
            PayloadFormat::SerializedTfTensors,
            PayloadFormat::RawJson,
            PayloadFormat::NdArrays,
        ];
        let refuse = |what: &str, ok: &[PayloadFormat]| {
            Err(Error::Config(format!(
                "{what} does not speak payload format {f}; use one of {}",
                ok.iter().map(|x| x.name()).collect::<Vec<_>>().join(", ")
            )))
        };
        match &self.endpoint {
            Endpoint::AiPlatform {
                project,
                model,
                version,
                region,
            } => {
                check_region(region)?;
                if !http_formats.contains(&f) {
                    return refuse("AI Platform", &http_formats);
                }
                let base = self.hosted_base(format!("https://{region}-ml.googleapis.com"))?;
                let mut path = format!("v1/projects/{project}/models/{model}");
                if let Some(v) = version {
                    path.push_str(&format!("/versions/{v}"));
                }
                Ok(join(&base, &format!("{path}:predict")))
            }
            Endpoint::Vertex {
                endpoint,
                raw_predict,
            } => {
                let parts: Vec<&str> = endpoint.split('/').collect();
                let region = match parts.as_slice() {
                    ["projects", _, "locations", region, "endpoints", _] => *region,
                    _ => {
                        return Err(Error::Config(format!(
                            "Vertex endpoint {endpoint:?} is not a resource name projects/PROJECT/locations/REGION/endpoints/ID"
                        )))
                    }
                };
                check_region(region)?;
                if !http_formats.contains(&f) {
                    return refuse("Vertex AI over HTTP", &http_formats);
                }
                let base =
                    self.hosted_base(format!("https://{region}-aiplatform.googleapis.com"))?;
                let verb = if *raw_predict {
                    "rawPredict"
                } else {
                    "predict"
                };
                Ok(join(&base, &format!("v1/{endpoint}:{verb}")))
            }
            Endpoint::TfServing {
                url,
                model,
                version,
                ..
            } => {
                let rest = [
                    PayloadFormat::TfServingJson,
                    PayloadFormat::SerializedTfTensors,
                ];
                let grpc = [
                    PayloadFormat::GrpcTfTensors,
                    PayloadFormat::GrpcSerializedTfTensors,
                    PayloadFormat::GrpcTfExamples,
                ];
                if grpc.contains(&f) {
                    return self.checked_address(url, UrlKind::Grpc);
                }
                if !rest.contains(&f) {
                    return refuse("TF Serving", &[rest.as_slice(), grpc.as_slice()].concat());
                }
                let base = self.checked_address(url, UrlKind::Rest)?;
                let path = tf_serving_path(model, version);
                Ok(join(&base, &format!("{path}:predict")))
            }
            Endpoint::KServeV2 {
                url,
                model,
                version,
            } => {
                let ok = [
                    PayloadFormat::KServeV2Json,
                    PayloadFormat::KServeV2Binary,
                    PayloadFormat::KServeV2Grpc,
                ];
                if !ok.contains(&f) {
                    return refuse("a KServe v2 server", &ok);
                }
                if f == PayloadFormat::KServeV2Grpc {
                    return self.checked_address(url, UrlKind::Grpc);
                }
                let base = self.checked_address(url, UrlKind::Rest)?;
                let path = kserve_path(model, version);
                Ok(join(&base, &format!("{path}/infer")))
            }
            Endpoint::Url(url) => {
                if f.is_grpc() {
                    return Err(Error::Config(format!(
                        "a plain URL predictor takes an HTTP payload format, not {f}"
                    )));
                }
                self.checked_address(url, UrlKind::Rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(endpoint: Endpoint, format: PayloadFormat) -> PredictorConfig {
        PredictorConfig {
            endpoint,
            base_url: None,
            format,
        }
    }

    #[test]
    fn hosted_urls() {
        let ai = cfg(
            Endpoint::AiPlatform {
                project: "p".into(),
                model: "m".into(),
                version: Some("v1".into()),
                region: DEFAULT_REGION.into(),
            },
            PayloadFormat::SerializedTfTensors,
        );
        assert_eq!(
            ai.url().unwrap(),
            "https://us-central1-ml.googleapis.com/v1/projects/p/models/m/versions/v1:predict"
        );
        let vx = cfg(
            Endpoint::Vertex {
                endpoint: "projects/p/locations/europe-west4/endpoints/123".into(),
                raw_predict: false,
            },
            PayloadFormat::RawJson,
        );
        assert_eq!(vx.url().unwrap(), "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/endpoints/123:predict");
        let local = PredictorConfig {
            base_url: Some("http://127.0.0.1:9/".into()),
            ..vx
        };
        assert_eq!(
            local.url().unwrap(),
            "http://127.0.0.1:9/v1/projects/p/locations/europe-west4/endpoints/123:predict"
        );
    }

    #[test]
    fn global_region_is_explained() {
        let ai = cfg(
            Endpoint::AiPlatform {
                project: "p".into(),
                model: "m".into(),
                version: None,
                region: "global".into(),
            },
            PayloadFormat::SerializedTfTensors,
        );
        let err = ai.url().unwrap_err().to_string();
        assert!(err.contains("regional endpoints"), "{err}");
    }

    #[test]
    fn serving_engine_urls_and_format_checks() {
        let tfs = cfg(
            Endpoint::TfServing {
                url: "http://h:8501".into(),
                model: "m".into(),
                version: Some(ModelVersion::Label("stable".into())),
                signature: None,
            },
            PayloadFormat::TfServingJson,
        );
        assert_eq!(
            tfs.url().unwrap(),
            "http://h:8501/v1/models/m/labels/stable:predict"
        );
        let ks = cfg(
            Endpoint::KServeV2 {
                url: "http://h:8080".into(),
                model: "m".into(),
                version: Some("2".into()),
            },
            PayloadFormat::KServeV2Binary,
        );
        assert_eq!(
            ks.url().unwrap(),
            "http://h:8080/v2/models/m/versions/2/infer"
        );
        let bad = cfg(
            Endpoint::KServeV2 {
                url: "http://h".into(),
                model: "m".into(),
                version: None,
            },
            PayloadFormat::RawJson,
        );
        assert!(bad
            .url()
            .unwrap_err()
            .to_string()
            .contains("does not speak payload format RAW_JSON"));
    }

    #[test]
    fn urls_are_checked_at_construction() {
        use UrlKind::{Grpc, Rest};
        let table: &[(UrlKind, &str, std::result::Result<&str, &str>)] = &[
            (Rest, "http://h:8501", Ok("http://h:8501")),
            (Rest, "HTTPS://h/a", Ok("https://h/a")),
            (Rest, " http://127.0.0.1:9/ ", Ok("http://127.0.0.1:9/")),
            (Rest, "localhost:8501", Err("`url` \"localhost:8501\" cannot be used: it has no scheme; write the address as http://localhost:8501 or https://localhost:8501")),
            (Rest, "ftp://h", Err("scheme \"ftp\" is not one this client speaks; use http:// or https://")),
            (Rest, "grpc://h:8500", Err("scheme \"grpc\" is not one this client speaks")),
            (Rest, "http://", Err("empty host")),
            (Rest, "http://h:99999", Err("invalid port number")),
            (Rest, "http://u:hunter2@:80/x?key=abc", Err("`url` \"http://:80/x\" cannot be used")),
            (Grpc, "http://h:8500", Ok("http://h:8500")),
            (Grpc, "grpc://h:8500", Ok("http://h:8500")),
            (Grpc, "h:8500", Err("it has no scheme; write the address as http://h:8500")),
            (Grpc, "https://h:8500", Err("gRPC over TLS is not built into this client")),
            (Grpc, "http://h:8500/v1/models/m", Err("without a path (/v1/models/m)")),
        ];
        for (kind, url, expected) in table {
            match (check_url("url", url, *kind), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{url}"),
                (Err(e), Err(want)) => {
                    let e = e.to_string();
                    assert!(e.contains(want), "{url}: {e}");
                    assert!(!e.contains("hunter2") && !e.contains("abc"), "{e}");
                }
                (got, want) => panic!("{url}: {got:?}, expected {want:?}"),
            }
        }
    }

    #[test]
    fn the_field_named_is_the_one_used() {
        let tfs = PredictorConfig {
            endpoint: Endpoint::TfServing {
                url: "http://fine:8501".into(),
                model: "m".into(),
                version: None,
                signature: None,
            },
            base_url: Some("fine:8501".into()),
            format: PayloadFormat::TfServingJson,
        };
        let err = tfs.url().unwrap_err().to_string();
        assert!(err.contains("`baseUrl` \"fine:8501\""), "{err}");
        let ai = PredictorConfig {
            endpoint: Endpoint::AiPlatform {
                project: "p".into(),
                model: "m".into(),
                version: None,
                region: DEFAULT_REGION.into(),
            },
            base_url: Some("127.0.0.1:8080".into()),
            format: PayloadFormat::SerializedTfTensors,
        };
        let err = ai.url().unwrap_err().to_string();
        assert!(
            err.contains("`baseUrl` \"127.0.0.1:8080\" cannot be used: it has no scheme"),
            "{err}"
        );
    }

    #[test]
    fn urls_in_messages_lose_credentials() {
        assert_eq!(
            display_url("https://user:pw@host:8/a/b?key=secret"),
            "https://host:8/a/b"
        );
        assert_eq!(display_url("http://h/x"), "http://h/x");
    }
}
