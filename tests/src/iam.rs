//! IAM held to the template: an emulator that enforces IAM per action and resource as AWS does
//! for DynamoDB and SSM (tests/emulators/moto_iam.py, moto with `INITIAL_NO_AUTH_ACTION_COUNT`
//! 0), execution roles made from the transformed template's `AWS::IAM::Role`s, and the log of
//! every decision, to compare what the code used with what the template grants.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use serde_json::{Value, json};

use crate::emulators::{self, Emulator};
use crate::template::{REGION, Stack};
use crate::{free_port, http, venv_bin, workspace_root};

/// Starts the IAM-enforcing moto on a free port. Every request must be signed with the keys of
/// a role made by [`create_role`] and be allowed by its policies.
pub fn start() -> Emulator {
    let port = free_port();
    let script = workspace_root().join("tests/emulators/moto_iam.py");
    emulators::start(
        venv_bin("python"),
        &[
            script.display().to_string(),
            "--port".into(),
            port.to_string(),
        ],
        port,
    )
}

/// The temporary credentials of an assumed role, as Lambda hands them to a function.
#[derive(Debug, Clone)]
pub struct RoleKeys {
    pub role: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

impl RoleKeys {
    /// The variables Lambda sets for the execution role's credentials.
    pub fn env(&self) -> [(String, String); 3] {
        [
            ("AWS_ACCESS_KEY_ID".into(), self.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                self.secret_access_key.clone(),
            ),
            ("AWS_SESSION_TOKEN".into(), self.session_token.clone()),
        ]
    }

    fn credentials(&self) -> Credentials {
        Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            Some(self.session_token.clone()),
            None,
            "iam-test-role",
        )
    }

    pub fn dynamo_client(&self, endpoint: &str) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .endpoint_url(endpoint)
                .credentials_provider(self.credentials())
                .build(),
        )
    }

    pub fn ssm_client(&self, endpoint: &str) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::Config::builder()
                .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
                .region(aws_sdk_ssm::config::Region::new(REGION))
                .endpoint_url(endpoint)
                .credentials_provider(self.credentials())
                .build(),
        )
    }
}

/// Creates a role with these `AWS::IAM::Role` properties (intrinsics resolved) and assumes it.
pub async fn create_role(endpoint: &str, name: &str, properties: &Value) -> RoleKeys {
    let url = format!("{endpoint}/_pss/iam/roles");
    let spec = json!({ "RoleName": name, "Properties": properties });
    let reply = http::blocking(move || http::post_json(&url, &spec)).await;
    assert_eq!(reply.status, 200, "role {}: {}", reply.status, reply.body);
    let keys = reply.json();
    RoleKeys {
        role: name.to_owned(),
        access_key_id: keys["AccessKeyId"].as_str().unwrap().to_owned(),
        secret_access_key: keys["SecretAccessKey"].as_str().unwrap().to_owned(),
        session_token: keys["SessionToken"].as_str().unwrap().to_owned(),
    }
}

/// A role that may do anything: the test's own seeding and inspection.
pub async fn admin(endpoint: &str, name: &str) -> RoleKeys {
    let properties = json!({
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
        "Policies": [{"PolicyName": "admin", "PolicyDocument": {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}],
    });
    create_role(endpoint, name, &properties).await
}

/// One authorization decision the emulator made.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Decision {
    pub role: String,
    /// `dynamodb:GetItem`, `ssm:GetParameters`, ...
    pub action: String,
    pub resource: String,
    pub allowed: bool,
}

/// Every decision since the emulator started, in order.
pub async fn decisions(endpoint: &str) -> Vec<Decision> {
    let url = format!("{endpoint}/_pss/iam/log");
    let reply = http::blocking(move || http::get(&url)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|d| Decision {
            role: d["role"].as_str().unwrap().to_owned(),
            action: d["action"].as_str().unwrap().to_owned(),
            resource: d["resource"].as_str().unwrap().to_owned(),
            allowed: d["allowed"].as_bool().unwrap(),
        })
        .collect()
}

/// The execution role of a function in the transformed template, with its intrinsics resolved.
pub fn function_role(stack: &Stack, function: &str) -> Value {
    let role = &stack.cfn["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0];
    let role = role
        .as_str()
        .unwrap_or_else(|| panic!("{function}'s Role is not a role of the template"));
    stack.properties(role)
}

/// What a role's own (inline) policies allow, as (action, resource) pairs. The managed policies
/// SAM attaches (AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess) are Lambda's, for its log
/// and trace delivery, and not counted. A wildcard is refused: the pairs must be exact to be
/// compared with what the code used.
pub fn granted(role: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
            other => panic!("{other}"),
        }
    };
    for policy in role["Policies"].as_array().into_iter().flatten() {
        for statement in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
            assert_eq!(statement["Effect"], "Allow", "{statement}");
            assert!(statement.get("NotAction").is_none() && statement.get("NotResource").is_none());
            for action in list(&statement["Action"]) {
                for resource in list(&statement["Resource"]) {
                    assert!(
                        !action.contains('*') && !resource.contains('*'),
                        "a wildcard in {statement}"
                    );
                    out.insert((action.clone(), resource));
                }
            }
        }
    }
    out
}
