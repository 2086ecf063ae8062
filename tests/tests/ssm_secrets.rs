//! Secrets read at init from SSM (moto serves it beside DynamoDB): a function's SecureString
//! parameters come back decrypted in one `GetParameters` round trip, values given in the
//! environment skip SSM, and a missing parameter is a config error that names it, never a value.

use std::collections::HashMap;

use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ssm::types::ParameterType;
use billing::config::{ConfigError, Secret, load_secrets_with};
use billing::webhook::WebhookConfig;
use pss_billing_tests::sdk::SentRequests;
use pss_billing_tests::{moto, unique};

/// An SSM client of moto whose requests are recorded.
fn ssm(requests: &SentRequests) -> aws_sdk_ssm::Client {
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto().url)
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .interceptor(requests.clone())
        .build();
    aws_sdk_ssm::Client::from_conf(config)
}

async fn put_secure_string(ssm: &aws_sdk_ssm::Client, name: &str, value: &str) {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .expect("put a SecureString parameter in moto");
}

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.get(name).cloned()
}

#[tokio::test]
async fn the_webhooks_secrets_load_from_ssm_in_one_round_trip() {
    let requests = SentRequests::default();
    let ssm = ssm(&requests);
    let prefix = unique("/pss-billing-test-");
    let (key_parameter, hooks_parameter) =
        (format!("{prefix}/stripe-key"), format!("{prefix}/hooks"));
    put_secure_string(&ssm, &key_parameter, "sk_test_from_ssm").await;
    put_secure_string(&ssm, &hooks_parameter, "whsec_old,whsec_new").await;
    requests.take_operations();

    let secrets = load_secrets_with(
        &ssm,
        &[Secret::STRIPE_SECRET_KEY, Secret::STRIPE_WEBHOOK_SECRETS],
        vars(&[
            ("STRIPE_SECRET_KEY_PARAMETER", &key_parameter),
            ("STRIPE_WEBHOOK_SECRETS_PARAMETER", &hooks_parameter),
        ]),
    )
    .await
    .expect("both secrets load");
    assert_eq!(
        requests.take_operations(),
        vec!["GetParameters"],
        "one round trip"
    );
    assert_eq!(
        secrets.get(Secret::STRIPE_SECRET_KEY).unwrap(),
        "sk_test_from_ssm",
        "decrypted"
    );
    let webhook = WebhookConfig::from_env(false, &secrets).expect("the webhook's config");
    assert_eq!(webhook.secrets.len(), 2, "rotation: both secrets accepted");
    assert!(!format!("{secrets:?}").contains("sk_test_from_ssm"));
}

#[tokio::test]
async fn values_given_in_the_environment_skip_ssm() {
    let requests = SentRequests::default();
    let secrets = load_secrets_with(
        &ssm(&requests),
        &[Secret::STRIPE_SECRET_KEY],
        vars(&[
            ("STRIPE_SECRET_KEY", "sk_test_direct"),
            ("STRIPE_SECRET_KEY_PARAMETER", "/never/read"),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(
        secrets.get(Secret::STRIPE_SECRET_KEY).unwrap(),
        "sk_test_direct"
    );
    assert!(requests.take_operations().is_empty(), "no SSM request");
}

#[tokio::test]
async fn a_missing_parameter_is_a_config_error_naming_it_and_no_value() {
    let requests = SentRequests::default();
    let ssm = ssm(&requests);
    let prefix = unique("/pss-billing-test-");
    let key_parameter = format!("{prefix}/stripe-key");
    let missing = format!("{prefix}/no-such-parameter");
    put_secure_string(&ssm, &key_parameter, "sk_test_present").await;
    requests.take_operations();

    let err = load_secrets_with(
        &ssm,
        &[Secret::STRIPE_SECRET_KEY, Secret::STRIPE_WEBHOOK_SECRETS],
        vars(&[
            ("STRIPE_SECRET_KEY_PARAMETER", &key_parameter),
            ("STRIPE_WEBHOOK_SECRETS_PARAMETER", &missing),
        ]),
    )
    .await
    .expect_err("a missing parameter fails the config");
    assert_eq!(
        requests.take_operations(),
        vec!["GetParameters"],
        "still one round trip"
    );
    assert!(
        matches!(
            err,
            ConfigError::Unreadable("STRIPE_WEBHOOK_SECRETS_PARAMETER", _)
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&missing), "names the parameter: {message}");
    assert!(!message.contains("sk_test_present"), "no value: {message}");

    // Neither the value nor the parameter variable: nothing to read.
    let err = load_secrets_with(&ssm, &[Secret::JWT_SECRET], vars(&[]))
        .await
        .expect_err("no secret configured");
    assert!(matches!(err, ConfigError::Missing("JWT_SECRET_PARAMETER")));
    assert!(requests.take_operations().is_empty());
}
