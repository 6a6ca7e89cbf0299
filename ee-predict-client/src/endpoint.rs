//! Where predictions go: the predictor kinds of Earth Engine and the open serving engines,
//! their URLs (every base URL can be overridden), and which payload formats each speaks.

use ee_tensor_proto::PayloadFormat;

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

impl PredictorConfig {
    /// Checks the combination and returns the URL requests go to (REST) or the server
    /// address (gRPC).
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
                let base = self
                    .base_url
                    .clone()
                    .unwrap_or_else(|| format!("https://{region}-ml.googleapis.com"));
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
                let base = self
                    .base_url
                    .clone()
                    .unwrap_or_else(|| format!("https://{region}-aiplatform.googleapis.com"));
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
                let base = self.base_url.as_deref().unwrap_or(url);
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
                    return Ok(base.to_string());
                }
                if !rest.contains(&f) {
                    return refuse("TF Serving", &[rest.as_slice(), grpc.as_slice()].concat());
                }
                let mut path = format!("v1/models/{model}");
                match version {
                    Some(ModelVersion::Number(n)) => path.push_str(&format!("/versions/{n}")),
                    Some(ModelVersion::Label(l)) => path.push_str(&format!("/labels/{l}")),
                    None => {}
                }
                Ok(join(base, &format!("{path}:predict")))
            }
            Endpoint::KServeV2 {
                url,
                model,
                version,
            } => {
                let base = self.base_url.as_deref().unwrap_or(url);
                let ok = [
                    PayloadFormat::KServeV2Json,
                    PayloadFormat::KServeV2Binary,
                    PayloadFormat::KServeV2Grpc,
                ];
                if !ok.contains(&f) {
                    return refuse("a KServe v2 server", &ok);
                }
                if f == PayloadFormat::KServeV2Grpc {
                    return Ok(base.to_string());
                }
                let mut path = format!("v2/models/{model}");
                if let Some(v) = version {
                    path.push_str(&format!("/versions/{v}"));
                }
                Ok(join(base, &format!("{path}/infer")))
            }
            Endpoint::Url(url) => {
                if f.is_grpc() {
                    return Err(Error::Config(format!(
                        "a plain URL predictor takes an HTTP payload format, not {f}"
                    )));
                }
                Ok(self.base_url.clone().unwrap_or_else(|| url.clone()))
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
    fn urls_in_messages_lose_credentials() {
        assert_eq!(
            display_url("https://user:pw@host:8/a/b?key=secret"),
            "https://host:8/a/b"
        );
        assert_eq!(display_url("http://h/x"), "http://h/x");
    }
}
