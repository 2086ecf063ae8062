//! Reading configuration from the Lambda environment: plain variables here, secrets (read from
//! SSM once per cold start) in [`secrets`].

mod secrets;

pub use secrets::{Secret, Secrets, load_secrets, load_secrets_with};

use crate::domain::GracePolicy;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {0} is invalid: {1}")]
    Invalid(&'static str, String),
    /// A secret's SSM parameter could not be read. Names the variable and the parameter, never
    /// a value.
    #[error("{0} names an SSM parameter that could not be read: {1}")]
    Unreadable(&'static str, String),
    /// SSM refused or failed the request for a function's secrets.
    #[error("SSM could not be read: {0}")]
    Ssm(String),
}

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing(name)),
    }
}

pub fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn parse_or<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError> {
    match optional(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| ConfigError::Invalid(name, "not a valid value".to_owned())),
    }
}

/// The AWS SDK configuration from the Lambda environment (region, credentials, and
/// `AWS_ENDPOINT_URL_*` overrides for local emulators).
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// `PAST_DUE_GRACE_DAYS` (default [`GracePolicy::DEFAULT_DAYS`]). Read here rather than in
/// `domain`, which does no I/O.
impl GracePolicy {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::days(parse_or(
            "PAST_DUE_GRACE_DAYS",
            Self::DEFAULT_DAYS,
        )?))
    }
}
