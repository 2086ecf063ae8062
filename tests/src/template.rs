//! template.yaml, read by one parser for every test that holds the deployment to the code: its
//! functions, the environment SAM gives them, their API events and the gateway responses.

use std::collections::BTreeMap;

use serde_yaml::Value;

pub fn load() -> Value {
    let text = std::fs::read_to_string(crate::workspace_root().join("template.yaml"))
        .expect("template.yaml");
    serde_yaml::from_str(&text).expect("valid YAML")
}

/// The resources of one CloudFormation type, as (logical id, resource), in template order.
pub fn resources<'a>(
    template: &'a Value,
    kind: &'a str,
) -> impl Iterator<Item = (&'a str, &'a Value)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(move |(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, r)| (id.as_str().expect("a logical id"), r))
}

/// The operand of an intrinsic function written as a tag (`!Ref X` is `tagged(v, "Ref")`).
/// Check tags before `as_str`: serde_yaml's `as_str` sees through them.
pub fn tagged<'a>(value: &'a Value, tag: &str) -> Option<&'a str> {
    match value {
        Value::Tagged(t) if t.tag == tag => t.value.as_str(),
        _ => None,
    }
}

/// One `AWS::Serverless::Function` of template.yaml.
#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    /// The cargo binary (`functions/<binary>`), also the folder of its events.
    pub binary: String,
}

/// Every function, sorted by logical id.
pub fn functions(template: &Value) -> Vec<Function> {
    let mut out: Vec<Function> = resources(template, "AWS::Serverless::Function")
        .map(|(id, r)| Function {
            logical_id: id.to_owned(),
            binary: r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .expect("BuildProperties.Binary")
                .to_owned(),
        })
        .collect();
    out.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
    out
}

/// A template value as `sam local` turns it into an environment string: `!Ref` of a parameter
/// is its default, scalars are stringified, any other intrinsic is unresolved and becomes "".
fn resolve(template: &Value, value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(tagged) if tagged.tag == "Ref" => {
            let name = tagged.value.as_str().unwrap_or_default();
            let default = &template["Parameters"][name]["Default"];
            if default.is_null() {
                String::new()
            } else {
                resolve(template, default)
            }
        }
        _ => String::new(),
    }
}

/// The variables the template declares for a function (Globals merged with its own), with the
/// values SAM resolves them to.
pub fn declared_env(template: &Value, logical_id: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for vars in [
        &template["Globals"]["Function"]["Environment"]["Variables"],
        &template["Resources"][logical_id]["Properties"]["Environment"]["Variables"],
    ] {
        if let Some(map) = vars.as_mapping() {
            for (k, v) in map {
                env.insert(k.as_str().unwrap().to_owned(), resolve(template, v));
            }
        }
    }
    env
}

/// One `Api` event of a function: a route API Gateway sends to it.
#[derive(Debug, Clone)]
pub struct ApiEvent<'a> {
    /// The function's logical id and its binary.
    pub function: &'a str,
    pub binary: &'a str,
    /// Upper case, as the route table writes it.
    pub method: String,
    pub path: &'a str,
    /// The event's `Properties` (Auth and the rest).
    pub properties: &'a Value,
}

/// Every `Api` event of every function, in template order.
pub fn api_events(template: &Value) -> Vec<ApiEvent<'_>> {
    let mut out = Vec::new();
    for (function, resource) in resources(template, "AWS::Serverless::Function") {
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("BuildProperties.Binary");
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            if event["Type"].as_str() != Some("Api") {
                continue;
            }
            let properties = &event["Properties"];
            out.push(ApiEvent {
                function,
                binary,
                method: properties["Method"]
                    .as_str()
                    .expect("Method")
                    .to_ascii_uppercase(),
                path: properties["Path"].as_str().expect("Path"),
                properties,
            });
        }
    }
    out
}

/// Every `AWS::Serverless::Api` (the REST API) of the template.
pub fn apis(template: &Value) -> Vec<&Value> {
    resources(template, "AWS::Serverless::Api")
        .map(|(_, api)| api)
        .collect()
}

/// One of an API's gateway responses: what API Gateway answers when it refuses a request itself.
#[derive(Debug, Clone)]
pub struct GatewayResponse {
    pub name: String,
    /// None: API Gateway keeps its own status.
    pub status: Option<u16>,
    /// The `application/json` response template.
    pub body: String,
}

pub fn gateway_responses(api: &Value) -> Vec<GatewayResponse> {
    api["Properties"]["GatewayResponses"]
        .as_mapping()
        .expect("GatewayResponses")
        .iter()
        .map(|(name, r)| GatewayResponse {
            name: name.as_str().unwrap().to_owned(),
            status: r["StatusCode"].as_str().map(|s| s.parse().unwrap()),
            body: r["ResponseTemplates"]["application/json"]
                .as_str()
                .expect("a JSON template")
                .to_owned(),
        })
        .collect()
}

// ---- the CloudFormation SAM makes of template.yaml ------------------------------------------

/// A JSON value of the transformed template.
pub type Json = serde_json::Value;

/// What `sam deploy` hands to CloudFormation: template.yaml through SAM's own transform
/// (aws-sam-translator, run offline by tests/emulators/sam_transform.py), with `overrides` as
/// parameter values. Computed in a clean environment, so no AWS profile of the machine leaks in.
pub fn transformed(overrides: &[(&str, &str)]) -> Json {
    let root = crate::workspace_root();
    let home = root.join("target/sam-transform-home");
    std::fs::create_dir_all(&home).unwrap();
    let out = std::process::Command::new(crate::venv_bin("python"))
        .arg(root.join("tests/emulators/sam_transform.py"))
        .arg(root.join("template.yaml"))
        .args(overrides.iter().map(|(k, v)| format!("{k}={v}")))
        .current_dir(&root)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("tests/emulators/sam_transform.py");
    assert!(
        out.status.success(),
        "SAM's transform refused template.yaml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from sam_transform.py")
}

/// The resources of one type in a transformed template, as (logical id, resource), sorted.
pub fn cfn_resources<'a>(cfn: &'a Json, kind: &str) -> Vec<(&'a str, &'a Json)> {
    let mut out: Vec<(&str, &Json)> = cfn["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), r))
        .collect();
    out.sort_by_key(|(id, _)| *id);
    out
}

/// A CloudFormation stack as it would be created from a transformed template: parameter values
/// (given, else the defaults), the pseudo parameters, and what `Ref` / `Fn::GetAtt` of the few
/// resources a policy or variable names resolve to. `resolve` evaluates the intrinsic functions
/// the template uses (Ref, Fn::GetAtt, Fn::Sub, Fn::If with its Conditions, Fn::Equals, Fn::Not,
/// Fn::And, Fn::Or, AWS::NoValue) and panics on any other, so a new one cannot pass unchecked.
pub struct Stack<'a> {
    pub cfn: &'a Json,
    pub parameters: BTreeMap<String, String>,
    /// `Ref` of a resource (a table's name, a function's name).
    pub refs: BTreeMap<String, String>,
    /// `Fn::GetAtt` as "Logical.Attribute".
    pub attributes: BTreeMap<String, String>,
}

pub const REGION: &str = "us-east-1";
/// moto's default account, so that ARNs resolved here are the ones moto computes.
pub const ACCOUNT: &str = "123456789012";

impl<'a> Stack<'a> {
    pub fn new(cfn: &'a Json, overrides: &[(&str, &str)]) -> Self {
        let mut parameters = BTreeMap::new();
        for (name, p) in cfn["Parameters"].as_object().expect("Parameters") {
            if let Some(default) = p.get("Default") {
                let value = match default {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                parameters.insert(name.clone(), value);
            }
        }
        for (k, v) in overrides {
            assert!(
                cfn["Parameters"].get(*k).is_some(),
                "{k} is not a parameter of the template"
            );
            parameters.insert((*k).to_owned(), (*v).to_owned());
        }
        Stack {
            cfn,
            parameters,
            refs: BTreeMap::new(),
            attributes: BTreeMap::new(),
        }
    }

    /// The billing table is named `table`: its Ref and Arn resolve accordingly.
    pub fn with_table(mut self, logical_id: &str, table: &str) -> Self {
        self.refs.insert(logical_id.to_owned(), table.to_owned());
        self.attributes.insert(
            format!("{logical_id}.Arn"),
            format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"),
        );
        self
    }

    fn pseudo(&self, name: &str) -> Option<String> {
        Some(
            match name {
                "AWS::Partition" => "aws",
                "AWS::Region" => REGION,
                "AWS::AccountId" => ACCOUNT,
                "AWS::URLSuffix" => "amazonaws.com",
                "AWS::StackName" => "pss-billing",
                _ => return None,
            }
            .to_owned(),
        )
    }

    fn reference(&self, name: &str) -> String {
        if let Some(v) = self.pseudo(name) {
            return v;
        }
        if self.cfn["Parameters"].get(name).is_some() {
            return self
                .parameters
                .get(name)
                .unwrap_or_else(|| panic!("parameter {name} has no value and no default"))
                .clone();
        }
        self.refs
            .get(name)
            .unwrap_or_else(|| panic!("Ref {name}: not resolvable here"))
            .clone()
    }

    /// Whether a named condition of the template holds.
    pub fn condition(&self, name: &str) -> bool {
        let c = &self.cfn["Conditions"][name];
        assert!(!c.is_null(), "no condition {name}");
        self.truth(c)
    }

    /// The value of a condition expression (Fn::Equals ...), as in a Rule's assertion.
    pub fn condition_value(&self, value: &Json) -> bool {
        self.truth(value)
    }

    fn truth(&self, value: &Json) -> bool {
        let obj = value.as_object().expect("a condition function");
        let (f, args) = obj.iter().next().expect("one function");
        match f.as_str() {
            "Fn::Equals" => {
                let a = self.scalar(&args[0]);
                let b = self.scalar(&args[1]);
                a == b
            }
            "Fn::Not" => !self.truth(&args[0]),
            "Fn::And" => args.as_array().unwrap().iter().all(|a| self.truth(a)),
            "Fn::Or" => args.as_array().unwrap().iter().any(|a| self.truth(a)),
            "Condition" => self.condition(args.as_str().unwrap()),
            other => panic!("condition function {other} is not evaluated here"),
        }
    }

    fn scalar(&self, value: &Json) -> String {
        match self.resolve(value) {
            Some(Json::String(s)) => s,
            Some(other) => other.to_string(),
            None => panic!("{value} resolves to nothing"),
        }
    }

    /// `value` with every intrinsic evaluated; `None` for AWS::NoValue (the property is absent).
    pub fn resolve(&self, value: &Json) -> Option<Json> {
        match value {
            Json::Object(obj) if obj.len() == 1 && obj.keys().next().unwrap() == "Ref" => {
                let name = obj["Ref"].as_str().unwrap();
                if name == "AWS::NoValue" {
                    return None;
                }
                Some(Json::String(self.reference(name)))
            }
            Json::Object(obj) if obj.len() == 1 && obj.contains_key("Fn::GetAtt") => {
                let parts: Vec<&str> = match &obj["Fn::GetAtt"] {
                    Json::Array(a) => a.iter().map(|p| p.as_str().unwrap()).collect(),
                    Json::String(s) => s.splitn(2, '.').collect(),
                    other => panic!("Fn::GetAtt {other}"),
                };
                let key = parts.join(".");
                Some(Json::String(
                    self.attributes
                        .get(&key)
                        .unwrap_or_else(|| panic!("Fn::GetAtt {key}: not resolvable here"))
                        .clone(),
                ))
            }
            Json::Object(obj) if obj.len() == 1 && obj.contains_key("Fn::Sub") => {
                let (text, vars) = match &obj["Fn::Sub"] {
                    Json::String(s) => (s.as_str(), serde_json::Map::new()),
                    Json::Array(a) => (
                        a[0].as_str().unwrap(),
                        a[1].as_object().cloned().unwrap_or_default(),
                    ),
                    other => panic!("Fn::Sub {other}"),
                };
                Some(Json::String(self.substitute(text, &vars)))
            }
            Json::Object(obj) if obj.len() == 1 && obj.contains_key("Fn::If") => {
                let args = obj["Fn::If"].as_array().unwrap();
                let branch = if self.condition(args[0].as_str().unwrap()) {
                    &args[1]
                } else {
                    &args[2]
                };
                self.resolve(branch)
            }
            Json::Object(obj) => {
                if let Some(f) = obj.keys().find(|k| k.starts_with("Fn::")) {
                    panic!("{f} is not evaluated here");
                }
                Some(Json::Object(
                    obj.iter()
                        .filter_map(|(k, v)| self.resolve(v).map(|v| (k.clone(), v)))
                        .collect(),
                ))
            }
            Json::Array(a) => Some(Json::Array(
                a.iter().filter_map(|v| self.resolve(v)).collect(),
            )),
            other => Some(other.clone()),
        }
    }

    fn substitute(&self, text: &str, vars: &serde_json::Map<String, Json>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closing brace") + start;
            let name = &rest[start + 2..end];
            let value = match vars.get(name) {
                Some(v) => self.scalar(v),
                None if name.contains('.') && self.pseudo(name).is_none() => {
                    let (id, attr) = name.split_once('.').unwrap();
                    self.scalar(&serde_json::json!({ "Fn::GetAtt": [id, attr] }))
                }
                None => self.reference(name),
            };
            out.push_str(&value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// A resource as created: `None` when its `Condition` is false.
    pub fn resource(&self, logical_id: &str) -> Option<&'a Json> {
        let r = &self.cfn["Resources"][logical_id];
        assert!(!r.is_null(), "no resource {logical_id}");
        match r.get("Condition").and_then(Json::as_str) {
            Some(c) if !self.condition(c) => None,
            _ => Some(r),
        }
    }

    /// A resource's properties with their intrinsics evaluated.
    pub fn properties(&self, logical_id: &str) -> Json {
        self.resolve(&self.resource(logical_id).expect("a created resource")["Properties"])
            .unwrap_or(Json::Null)
    }
}

/// What SAM CLI reads from samconfig.toml, by environment and command (`build`, `deploy`,
/// `validate`, `local_invoke`, `local_start_api`), `parameter_overrides` parsed, computed by SAM's
/// own code (tests/emulators/samconfig_json.py).
pub fn samconfig() -> Json {
    let root = crate::workspace_root();
    let home = root.join("target/sam-transform-home");
    std::fs::create_dir_all(&home).unwrap();
    let out = std::process::Command::new(crate::venv_bin("python"))
        .arg(root.join("tests/emulators/samconfig_json.py"))
        .arg(&root)
        .current_dir(&root)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .expect("tests/emulators/samconfig_json.py");
    assert!(
        out.status.success(),
        "SAM could not read samconfig.toml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from samconfig_json.py")
}

/// The environment Lambda gives a function of the stack: the template's variables (resolved)
/// and the ones Lambda sets itself (name, memory, version, log format and level from
/// LoggingConfig), without credentials.
pub fn lambda_env(stack: &Stack, logical_id: &str) -> BTreeMap<String, String> {
    let props = &stack.cfn["Resources"][logical_id]["Properties"];
    let text = |v: &Json| match stack.resolve(v) {
        Some(Json::String(s)) => s,
        Some(Json::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let mut env: BTreeMap<String, String> = props["Environment"]["Variables"]
        .as_object()
        .map(|vars| vars.iter().map(|(k, v)| (k.clone(), text(v))).collect())
        .unwrap_or_default();
    let logging = &props["LoggingConfig"];
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_NAME", logical_id.to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            text(&props["MemorySize"]),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{logical_id}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/12/01/[$LATEST]0".to_owned(),
        ),
        ("AWS_LAMBDA_LOG_FORMAT", text(&logging["LogFormat"])),
        (
            "AWS_LAMBDA_LOG_LEVEL",
            text(&logging["ApplicationLogLevel"]),
        ),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_DEFAULT_REGION", REGION.to_owned()),
    ] {
        env.insert(k.to_owned(), v);
    }
    env
}
