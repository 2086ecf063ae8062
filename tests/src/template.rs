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
