//! Reading configuration from the Lambda environment.

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {0} is invalid: {1}")]
    Invalid(&'static str, String),
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

/// A secret, read once at cold start: from `<NAME>` itself (local runs, tests) or, in AWS, from
/// the SSM SecureString parameter named by `<NAME>_PARAMETER`. Secrets never sit in the
/// template or in the function's environment in AWS, and are never logged.
pub async fn secret(
    name: &'static str,
    parameter_var: &'static str,
    aws: &aws_config::SdkConfig,
) -> Result<String, ConfigError> {
    if let Some(value) = optional(name) {
        return Ok(value);
    }
    let parameter = required(parameter_var)?;
    let out = aws_sdk_ssm::Client::new(aws)
        .get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await
        // The SDK error names the parameter, never its value.
        .map_err(|e| {
            ConfigError::Invalid(
                parameter_var,
                aws_sdk_ssm::error::DisplayErrorContext(e).to_string(),
            )
        })?;
    out.parameter
        .and_then(|p| p.value)
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}
