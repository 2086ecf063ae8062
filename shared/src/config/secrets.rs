//! Secrets, read once per cold start: each from the variable of its own name (local runs, tests)
//! or, in AWS, from the SSM SecureString parameter named by `<NAME>_PARAMETER`. Secrets never sit
//! in the template or in a function's environment in AWS, and are never logged: no error and no
//! `Debug` output here carries a value.
//!
//! A function names every secret it needs in one [`load_secrets`] call, which reads all the
//! parameters in a single SSM `GetParameters` request (with decryption): one round trip at init,
//! whatever the number of secrets.

use std::collections::HashMap;

use aws_sdk_ssm::error::DisplayErrorContext;

use super::ConfigError;

/// A secret a function reads at init.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Secret {
    /// The variable holding the value itself (local runs, tests).
    pub name: &'static str,
    /// The variable naming its SSM parameter (AWS).
    pub parameter_var: &'static str,
}

impl Secret {
    pub const STRIPE_SECRET_KEY: Secret =
        secret("STRIPE_SECRET_KEY", "STRIPE_SECRET_KEY_PARAMETER");
    /// Comma-separated, one or two (two while rotating).
    pub const STRIPE_WEBHOOK_SECRETS: Secret =
        secret("STRIPE_WEBHOOK_SECRETS", "STRIPE_WEBHOOK_SECRETS_PARAMETER");
    pub const JWT_SECRET: Secret = secret("JWT_SECRET", "JWT_SECRET_PARAMETER");
}

/// The secret held by variable `name`, or by the SSM parameter `parameter_var` names.
pub(super) const fn secret(name: &'static str, parameter_var: &'static str) -> Secret {
    Secret {
        name,
        parameter_var,
    }
}

/// The values of the secrets a function loaded.
#[derive(Clone, Default)]
pub struct Secrets(HashMap<&'static str, String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The names only: the values must never reach a log line.
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Secrets {
    /// A loaded secret; an error when it was not asked for at init.
    pub fn get(&self, secret: Secret) -> Result<&str, ConfigError> {
        self.0
            .get(secret.name)
            .map(String::as_str)
            .ok_or(ConfigError::Missing(secret.name))
    }
}

/// Loads `wanted` from the process environment and, for those not given there, from SSM.
pub async fn load_secrets(
    aws: &aws_config::SdkConfig,
    wanted: &[Secret],
) -> Result<Secrets, ConfigError> {
    load(
        wanted,
        |var| std::env::var(var).ok(),
        || aws_sdk_ssm::Client::new(aws),
    )
    .await
}

/// [`load_secrets`] with the variables read from `vars` and the parameters from `ssm` (tests, and
/// callers that already hold an SSM client).
pub async fn load_secrets_with(
    ssm: &aws_sdk_ssm::Client,
    wanted: &[Secret],
    vars: impl Fn(&str) -> Option<String>,
) -> Result<Secrets, ConfigError> {
    load(wanted, vars, || ssm.clone()).await
}

async fn load(
    wanted: &[Secret],
    vars: impl Fn(&str) -> Option<String>,
    ssm: impl FnOnce() -> aws_sdk_ssm::Client,
) -> Result<Secrets, ConfigError> {
    let plan = Plan::new(wanted, vars)?;
    if plan.parameters.is_empty() {
        // Everything was given directly: no SSM client is even built.
        return Ok(plan.found);
    }
    plan.fetch(&ssm()).await
}

/// What the environment gave, and the SSM parameters still to read.
struct Plan {
    found: Secrets,
    /// (secret, its parameter's name)
    parameters: Vec<(Secret, String)>,
}

impl Plan {
    fn new(wanted: &[Secret], vars: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| vars(name).filter(|v| !v.trim().is_empty());
        let mut found = Secrets::default();
        let mut parameters = Vec::new();
        for &secret in wanted {
            if let Some(value) = var(secret.name) {
                found.0.insert(secret.name, value);
            } else {
                let parameter =
                    var(secret.parameter_var).ok_or(ConfigError::Missing(secret.parameter_var))?;
                parameters.push((secret, parameter.trim().to_owned()));
            }
        }
        Ok(Self { found, parameters })
    }

    /// Reads every parameter in one `GetParameters` request (SSM takes up to 10 names a call;
    /// a function needs two at most).
    async fn fetch(self, ssm: &aws_sdk_ssm::Client) -> Result<Secrets, ConfigError> {
        let Plan {
            mut found,
            parameters,
        } = self;
        let mut names: Vec<String> = parameters.iter().map(|(_, name)| name.clone()).collect();
        names.sort();
        names.dedup();
        let out = ssm
            .get_parameters()
            .set_names(Some(names))
            .with_decryption(true)
            .send()
            .await
            // The SDK error names the request and the parameters, never a value.
            .map_err(|e| ConfigError::Ssm(DisplayErrorContext(e).to_string()))?;
        for (secret, name) in parameters {
            let parameter = out.parameters().iter().find(|p| {
                // Asked for by name, by ARN, or by name with a version or label selector.
                let by_name = p.name() == Some(name.as_str());
                let by_arn = p.arn() == Some(name.as_str());
                let by_selector = p
                    .name()
                    .zip(p.selector())
                    .is_some_and(|(n, s)| format!("{n}{s}") == name);
                by_name || by_arn || by_selector
            });
            let Some(parameter) = parameter else {
                return Err(ConfigError::Unreadable(
                    secret.parameter_var,
                    format!("SSM parameter {name} does not exist or is not readable"),
                ));
            };
            let value = parameter
                .value()
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(secret.name))?;
            found.0.insert(secret.name, value.to_owned());
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn values_given_directly_need_no_parameter() {
        let plan = Plan::new(
            &[Secret::STRIPE_SECRET_KEY, Secret::STRIPE_WEBHOOK_SECRETS],
            vars(&[
                ("STRIPE_SECRET_KEY", "sk_test_1"),
                ("STRIPE_WEBHOOK_SECRETS_PARAMETER", " /pss/webhook "),
            ]),
        )
        .unwrap();
        assert_eq!(
            plan.found.get(Secret::STRIPE_SECRET_KEY).unwrap(),
            "sk_test_1"
        );
        assert_eq!(
            plan.parameters,
            vec![(Secret::STRIPE_WEBHOOK_SECRETS, "/pss/webhook".to_owned())]
        );
    }

    #[test]
    fn a_secret_with_neither_variable_names_its_parameter_variable() {
        let plan = Plan::new(&[Secret::JWT_SECRET], vars(&[("JWT_SECRET", " ")]));
        assert!(matches!(
            plan,
            Err(ConfigError::Missing("JWT_SECRET_PARAMETER"))
        ));
    }

    #[test]
    fn debug_output_never_shows_values() {
        let mut secrets = Secrets::default();
        secrets.0.insert("JWT_SECRET", "hunter2".to_owned());
        let shown = format!("{secrets:?}");
        assert!(shown.contains("JWT_SECRET") && !shown.contains("hunter2"));
    }
}
