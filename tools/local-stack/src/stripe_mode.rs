//! Which Stripe the local stack talks to: the emulators (default), or a real Stripe account in
//! test mode when `STRIPE_SECRET_KEY` is set (with `STRIPE_WEBHOOK_SECRETS` from
//! `stripe listen --print-secret`). Live keys are refused: a local stack must never move money.
//! Nothing here prints or returns a secret's value.

use std::fmt;

/// The Stripe of a local stack.
#[derive(PartialEq, Eq)]
pub enum StripeMode {
    /// localstripe and the fixture Stripe on loopback (no account, no network).
    Emulated,
    /// A Stripe account in test mode, through `api.stripe.com` (or `STRIPE_API_BASE`).
    TestMode(TestModeKeys),
}

/// The secrets of test mode. `Debug` names their kind, never their value.
#[derive(PartialEq, Eq)]
pub struct TestModeKeys {
    pub secret_key: String,
    /// One, or two while `stripe listen` is restarted with a new secret.
    pub webhook_secrets: Vec<String>,
    /// `STRIPE_API_BASE`, for a proxy or the offline tests; `None` is Stripe itself.
    pub api_base: Option<String>,
}

impl fmt::Debug for TestModeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestModeKeys")
            .field("secret_key", &key_kind(&self.secret_key))
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("api_base", &self.api_base)
            .finish()
    }
}

impl fmt::Debug for StripeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StripeMode::Emulated => f.write_str("Emulated"),
            StripeMode::TestMode(keys) => f.debug_tuple("TestMode").field(keys).finish(),
        }
    }
}

/// Why the environment does not select a usable mode. Messages name variables, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    #[error(
        "STRIPE_SECRET_KEY is a live-mode key: the local stack only runs against Stripe test mode \
         (use an sk_test_... or rk_test_... key)"
    )]
    LiveKey,
    #[error("STRIPE_SECRET_KEY is not a Stripe secret key (expected sk_test_... or rk_test_...)")]
    NotASecretKey,
    #[error(
        "STRIPE_WEBHOOK_SECRETS is required with STRIPE_SECRET_KEY: run \
         `stripe listen --print-secret` and pass the whsec_... it prints"
    )]
    MissingWebhookSecret,
    #[error("STRIPE_WEBHOOK_SECRETS must be one or two whsec_... secrets, comma-separated")]
    BadWebhookSecret,
}

/// `sk_live_` → "live", `sk_test_` → "test"; for logs, never the key.
fn key_kind(key: &str) -> &'static str {
    if is_live(key) {
        "live"
    } else if is_test(key) {
        "test"
    } else {
        "unknown"
    }
}

fn is_live(key: &str) -> bool {
    key.starts_with("sk_live_") || key.starts_with("rk_live_")
}

fn is_test(key: &str) -> bool {
    (key.starts_with("sk_test_") || key.starts_with("rk_test_")) && key.len() > "sk_test_".len()
}

impl StripeMode {
    /// Selects the mode from variables (`lookup("STRIPE_SECRET_KEY")`, ...); pure, so the tests
    /// need no process environment.
    pub fn select(lookup: impl Fn(&str) -> Option<String>) -> Result<StripeMode, ModeError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(secret_key) = get("STRIPE_SECRET_KEY") else {
            return Ok(StripeMode::Emulated);
        };
        if is_live(&secret_key) {
            return Err(ModeError::LiveKey);
        }
        if !is_test(&secret_key) {
            return Err(ModeError::NotASecretKey);
        }
        let raw = get("STRIPE_WEBHOOK_SECRETS").ok_or(ModeError::MissingWebhookSecret)?;
        let webhook_secrets: Vec<String> = billing::webhook::secret_list(&raw)
            .map(str::to_owned)
            .collect();
        if webhook_secrets.is_empty()
            || webhook_secrets.len() > 2
            || webhook_secrets.iter().any(|s| !s.starts_with("whsec_"))
        {
            return Err(ModeError::BadWebhookSecret);
        }
        Ok(StripeMode::TestMode(TestModeKeys {
            secret_key,
            webhook_secrets,
            api_base: get("STRIPE_API_BASE"),
        }))
    }

    pub fn from_env() -> Result<StripeMode, ModeError> {
        Self::select(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(vars: &[(&str, &str)]) -> Result<StripeMode, ModeError> {
        StripeMode::select(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn no_key_means_the_emulators() {
        assert_eq!(select(&[]), Ok(StripeMode::Emulated));
        assert_eq!(
            select(&[("STRIPE_SECRET_KEY", "  ")]),
            Ok(StripeMode::Emulated)
        );
        // A webhook secret alone does not switch to a real account.
        assert_eq!(
            select(&[("STRIPE_WEBHOOK_SECRETS", "whsec_test_1")]),
            Ok(StripeMode::Emulated)
        );
    }

    #[test]
    fn a_test_key_and_the_cli_secret_select_test_mode() {
        let mode = select(&[
            ("STRIPE_SECRET_KEY", "sk_test_51Abc"),
            ("STRIPE_WEBHOOK_SECRETS", " whsec_cli_secret "),
        ])
        .unwrap();
        assert_eq!(
            mode,
            StripeMode::TestMode(TestModeKeys {
                secret_key: "sk_test_51Abc".into(),
                webhook_secrets: vec!["whsec_cli_secret".into()],
                api_base: None,
            })
        );
        let restricted = select(&[
            ("STRIPE_SECRET_KEY", "rk_test_51Abc"),
            ("STRIPE_WEBHOOK_SECRETS", "whsec_old,whsec_new"),
            ("STRIPE_API_BASE", "http://127.0.0.1:12111"),
        ])
        .unwrap();
        match restricted {
            StripeMode::TestMode(keys) => {
                assert_eq!(keys.webhook_secrets, ["whsec_old", "whsec_new"]);
                assert_eq!(keys.api_base.as_deref(), Some("http://127.0.0.1:12111"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn live_keys_are_refused() {
        for key in ["sk_live_51Abc", "rk_live_51Abc"] {
            assert_eq!(
                select(&[
                    ("STRIPE_SECRET_KEY", key),
                    ("STRIPE_WEBHOOK_SECRETS", "whsec_x")
                ]),
                Err(ModeError::LiveKey)
            );
        }
        for key in ["pk_test_51Abc", "sk_test_", "whsec_x", "secret"] {
            assert_eq!(
                select(&[
                    ("STRIPE_SECRET_KEY", key),
                    ("STRIPE_WEBHOOK_SECRETS", "whsec_x")
                ]),
                Err(ModeError::NotASecretKey),
                "{key}"
            );
        }
    }

    #[test]
    fn test_mode_needs_the_cli_webhook_secret() {
        let key = ("STRIPE_SECRET_KEY", "sk_test_51Abc");
        assert_eq!(select(&[key]), Err(ModeError::MissingWebhookSecret));
        for bad in ["sk_test_oops", "whsec_a,whsec_b,whsec_c", ","] {
            let got = select(&[key, ("STRIPE_WEBHOOK_SECRETS", bad)]);
            assert!(
                matches!(
                    got,
                    Err(ModeError::BadWebhookSecret) | Err(ModeError::MissingWebhookSecret)
                ),
                "{bad}: {got:?}"
            );
        }
    }

    #[test]
    fn secrets_never_show_in_debug_or_errors() {
        let mode = select(&[
            ("STRIPE_SECRET_KEY", "sk_test_fake-SUPERSECRET"),
            ("STRIPE_WEBHOOK_SECRETS", "whsec_SUPERSECRETHOOK"),
        ])
        .unwrap();
        let shown = format!("{mode:?}");
        assert!(!shown.contains("SUPERSECRET"), "{shown}");
        assert!(shown.contains("test"), "{shown}");
        let err = select(&[
            ("STRIPE_SECRET_KEY", "sk_live_fake-SUPERSECRET"),
            ("STRIPE_WEBHOOK_SECRETS", "whsec_SUPERSECRETHOOK"),
        ])
        .unwrap_err();
        assert!(!err.to_string().contains("SUPERSECRET"));
        assert!(!format!("{err:?}").contains("SUPERSECRET"));
    }
}
