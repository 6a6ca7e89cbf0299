//! Placeholder with the agreed interface; the real module replaces it.
#![allow(missing_docs)]
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, PartialEq)]
pub struct Secret(String);
impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}
#[derive(Clone, Debug, PartialEq, Default)]
pub enum AuthConfig {
    #[default]
    None,
    BearerEnv {
        var: String,
    },
    BearerCommand {
        command: Vec<String>,
        ttl: Duration,
    },
    ServiceAccount {
        key_file: PathBuf,
        scopes: Vec<String>,
    },
}
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("auth: {0}")]
    Other(String),
}
#[derive(Clone, Debug)]
pub struct TokenProvider {
    config: AuthConfig,
}
impl TokenProvider {
    pub fn new(config: AuthConfig) -> Result<Self, AuthError> {
        Ok(TokenProvider { config })
    }
    pub fn with_http_client(
        config: AuthConfig,
        _client: reqwest::Client,
    ) -> Result<Self, AuthError> {
        Ok(TokenProvider { config })
    }
    pub async fn token(&self) -> Result<Option<Secret>, AuthError> {
        match &self.config {
            AuthConfig::BearerEnv { var } => std::env::var(var)
                .map(|v| Some(Secret(v)))
                .map_err(|_| AuthError::Other(var.clone())),
            _ => Ok(None),
        }
    }
    pub async fn invalidate(&self) {}
}
