//! template.yaml must declare the table exactly as the code (and so the tests) create it.

use billing::store::table::{BILLING_MODE, KEY_SCHEMA, TTL_ATTRIBUTE};
use pss_billing_tests::workspace_root;
use serde_yaml::Value;

fn template() -> Value {
    let text =
        std::fs::read_to_string(workspace_root().join("template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("valid YAML")
}

fn strings(list: &Value, a: &str, b: &str) -> Vec<(String, String)> {
    list.as_sequence()
        .expect("a list")
        .iter()
        .map(|e| {
            (
                e[a].as_str().unwrap().to_owned(),
                e[b].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn table_in_template_matches_the_code() {
    let t = template();
    let table = &t["Resources"]["BillingTable"];
    assert_eq!(table["Type"].as_str(), Some("AWS::DynamoDB::Table"));
    let props = &table["Properties"];
    assert_eq!(props["BillingMode"].as_str(), Some(BILLING_MODE));
    let attributes = strings(
        &props["AttributeDefinitions"],
        "AttributeName",
        "AttributeType",
    );
    let keys = strings(&props["KeySchema"], "AttributeName", "KeyType");
    let expected_attributes: Vec<_> = KEY_SCHEMA
        .iter()
        .map(|(n, t, _)| (n.to_string(), t.to_string()))
        .collect();
    let expected_keys: Vec<_> = KEY_SCHEMA
        .iter()
        .map(|(n, _, r)| (n.to_string(), r.to_string()))
        .collect();
    assert_eq!(attributes, expected_attributes);
    assert_eq!(keys, expected_keys);
    assert_eq!(
        props["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some(TTL_ATTRIBUTE)
    );
    assert_eq!(
        props["TimeToLiveSpecification"]["Enabled"].as_bool(),
        Some(true)
    );
    assert_eq!(
        props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
}

#[test]
fn every_function_crate_has_a_template_resource_and_sample_events() {
    let t = template();
    let resources = t["Resources"].as_mapping().unwrap();
    let binaries: Vec<String> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|r| {
            assert_eq!(
                r["Metadata"]["BuildMethod"].as_str(),
                Some("rust-cargolambda")
            );
            r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut crates: Vec<String> = std::fs::read_dir(workspace_root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    crates.sort();
    let mut sorted = binaries.clone();
    sorted.sort();
    assert_eq!(sorted, crates, "functions/ and template.yaml disagree");
    for name in crates {
        let dir = workspace_root().join("events").join(&name);
        let count = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert!(count > 0, "no sample event in events/{name}");
    }
}

fn ref_to(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        _ => None,
    }
}

#[test]
fn architecture_and_log_level_are_parameters_of_every_function() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    let arch = &globals["Architectures"];
    assert_eq!(arch.as_sequence().map(Vec::len), Some(1));
    assert_eq!(ref_to(&arch[0]), Some("Architecture"));
    let p = &t["Parameters"]["Architecture"];
    assert_eq!(p["Default"].as_str(), Some("arm64"));
    let allowed: Vec<&str> = p["AllowedValues"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(allowed, ["arm64", "x86_64"]);
    // Lambda sets AWS_LAMBDA_LOG_LEVEL only for JSON logs with an ApplicationLogLevel.
    assert_eq!(globals["LoggingConfig"]["LogFormat"].as_str(), Some("JSON"));
    assert_eq!(
        ref_to(&globals["LoggingConfig"]["ApplicationLogLevel"]),
        Some("LogLevel")
    );
    for (id, r) in t["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() == Some("AWS::Serverless::Function") {
            let props = &r["Properties"];
            assert!(
                props["Architectures"].is_null() && props["LoggingConfig"].is_null(),
                "{} overrides the global Architecture or LoggingConfig",
                id.as_str().unwrap()
            );
        }
    }
}
