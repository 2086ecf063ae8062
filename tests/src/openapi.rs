//! openapi.json and a small validator of its JSON Schema dialect (OpenAPI 3.0: `nullable`, no
//! `type` lists) that also records what the validated samples exercised, so that
//! tests/tests/openapi.rs can prove both directions: every response of the code is documented,
//! and every documented property, optional property, nullable field and enum value is produced.
//! A general JSON Schema crate checks only the first direction and knows no `nullable`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

pub fn document_text() -> String {
    std::fs::read_to_string(crate::workspace_root().join("openapi.json")).expect("openapi.json")
}

pub fn document() -> Value {
    serde_json::from_str(&document_text()).expect("openapi.json is JSON")
}

/// A JSON-pointer segment (`/api/leads` -> `~1api~1leads`).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

pub fn at<'a>(doc: &'a Value, pointer: &str) -> &'a Value {
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("openapi.json has nothing at {pointer}"))
}

pub fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What the validated samples exercised, by schema pointer.
#[derive(Debug, Default)]
pub struct Coverage {
    pub visited: BTreeSet<String>,
    pub present: BTreeSet<(String, String)>,
    pub absent: BTreeSet<(String, String)>,
    pub null: BTreeSet<String>,
    pub values: BTreeSet<(String, String)>,
}

impl Coverage {
    pub fn absorb(&mut self, other: Coverage) {
        self.visited.extend(other.visited);
        self.present.extend(other.present);
        self.absent.extend(other.absent);
        self.null.extend(other.null);
        self.values.extend(other.values);
    }
}

/// The keywords the validator understands or that carry no constraint. Anything else is refused,
/// so the document cannot use a keyword this test would silently skip.
pub const KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "nullable",
    "anyOf",
    "oneOf",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "default",
    "description",
    "example",
    "title",
];

pub fn bound(schema: &Map<String, Value>, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

/// Validates `value` against the schema at `pointer`. Objects accept only declared properties
/// unless `additionalProperties` says otherwise; `null` only where `nullable: true`.
pub fn validate(
    doc: &Value,
    pointer: &str,
    value: &Value,
    path: &str,
    seen: &mut Coverage,
) -> Result<(), String> {
    let schema = doc
        .pointer(pointer)
        .and_then(Value::as_object)
        .ok_or_else(|| format!("no schema at {pointer}"))?;
    if let Some(target) = schema.get("$ref") {
        if schema.len() != 1 {
            return Err(format!(
                "{pointer}: OpenAPI 3.0 ignores the siblings of $ref"
            ));
        }
        let target = target
            .as_str()
            .and_then(|t| t.strip_prefix('#'))
            .ok_or_else(|| format!("{pointer}: only local $refs"))?;
        return validate(doc, target, value, path, seen);
    }
    if let Some(key) = schema.keys().find(|k| !KEYWORDS.contains(&k.as_str())) {
        return Err(format!(
            "{pointer}: keyword {key:?} is not understood by this test's validator"
        ));
    }
    seen.visited.insert(pointer.to_owned());
    if let Some(allowed) = schema.get("enum") {
        let allowed = allowed
            .as_array()
            .ok_or_else(|| format!("{pointer}: enum is not a list"))?;
        if !allowed.contains(value) {
            return Err(format!(
                "{path}: {value} is not one of {allowed:?} ({pointer})"
            ));
        }
        seen.values.insert((pointer.to_owned(), value.to_string()));
    }
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            return Err(format!("{path}: null, but {pointer} is not nullable"));
        }
        seen.null.insert(pointer.to_owned());
        return Ok(());
    }
    for (keyword, exactly_one) in [("anyOf", false), ("oneOf", true)] {
        let Some(branches) = schema.get(keyword) else {
            continue;
        };
        let branches = branches
            .as_array()
            .ok_or_else(|| format!("{pointer}: {keyword} is not a list"))?;
        let mut matched = Vec::new();
        let mut errors = Vec::new();
        for i in 0..branches.len() {
            let mut local = Coverage::default();
            match validate(
                doc,
                &format!("{pointer}/{keyword}/{i}"),
                value,
                path,
                &mut local,
            ) {
                Ok(()) => matched.push(local),
                Err(e) => errors.push(e),
            }
        }
        if matched.is_empty() {
            return Err(format!(
                "{path}: matches no branch of {pointer}/{keyword}: {}",
                errors.join("; ")
            ));
        }
        if exactly_one && matched.len() > 1 {
            return Err(format!(
                "{path}: matches several branches of {pointer}/oneOf"
            ));
        }
        seen.absorb(matched.swap_remove(0));
        return Ok(());
    }
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{pointer}: no type"))?;
    match kind {
        "object" => {
            let object = value
                .as_object()
                .ok_or_else(|| format!("{path}: expected an object, got {value}"))?;
            for name in strings(schema.get("required")) {
                if !object.contains_key(&name) {
                    return Err(format!(
                        "{path}: required property {name:?} is missing ({pointer})"
                    ));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for name in properties.into_iter().flat_map(|p| p.keys()) {
                let key = (pointer.to_owned(), name.clone());
                match object.get(name) {
                    Some(v) => {
                        validate(
                            doc,
                            &format!("{pointer}/properties/{}", escape(name)),
                            v,
                            &format!("{path}.{name}"),
                            seen,
                        )?;
                        seen.present.insert(key);
                    }
                    None => {
                        seen.absent.insert(key);
                    }
                }
            }
            for (name, v) in object {
                if properties.is_some_and(|p| p.contains_key(name)) {
                    continue;
                }
                match schema.get("additionalProperties") {
                    Some(Value::Bool(true)) => {}
                    Some(Value::Object(_)) => validate(
                        doc,
                        &format!("{pointer}/additionalProperties"),
                        v,
                        &format!("{path}.{name}"),
                        seen,
                    )?,
                    _ => {
                        return Err(format!(
                            "{path}: property {name:?} is not declared in {pointer}"
                        ));
                    }
                }
            }
        }
        "array" => {
            let items = value
                .as_array()
                .ok_or_else(|| format!("{path}: expected an array, got {value}"))?;
            let n = items.len() as f64;
            if bound(schema, "minItems").is_some_and(|m| n < m)
                || bound(schema, "maxItems").is_some_and(|m| n > m)
            {
                return Err(format!("{path}: {n} items is out of bounds ({pointer})"));
            }
            if !schema.contains_key("items") {
                return Err(format!("{pointer}: an array schema needs items"));
            }
            for (i, item) in items.iter().enumerate() {
                validate(
                    doc,
                    &format!("{pointer}/items"),
                    item,
                    &format!("{path}[{i}]"),
                    seen,
                )?;
            }
        }
        "string" => {
            let text = value
                .as_str()
                .ok_or_else(|| format!("{path}: expected a string, got {value}"))?;
            let n = text.chars().count() as f64;
            if bound(schema, "minLength").is_some_and(|m| n < m)
                || bound(schema, "maxLength").is_some_and(|m| n > m)
            {
                return Err(format!("{path}: length {n} is out of bounds ({pointer})"));
            }
            if let Some(pattern) = schema.get("pattern") {
                let pattern = pattern
                    .as_str()
                    .ok_or_else(|| format!("{pointer}: pattern is not a string"))?;
                let regex = regex_lite::Regex::new(pattern)
                    .map_err(|e| format!("{pointer}: pattern {pattern:?}: {e}"))?;
                if !regex.is_match(text) {
                    return Err(format!(
                        "{path}: {text:?} does not match {pattern:?} ({pointer})"
                    ));
                }
            }
        }
        "integer" | "number" => {
            let ok = if kind == "integer" {
                value.is_i64() || value.is_u64()
            } else {
                value.is_number()
            };
            if !ok {
                return Err(format!("{path}: expected {kind}, got {value}"));
            }
            let x = value.as_f64().unwrap_or_default();
            if bound(schema, "minimum").is_some_and(|m| x < m)
                || bound(schema, "maximum").is_some_and(|m| x > m)
            {
                return Err(format!("{path}: {x} is out of bounds ({pointer})"));
            }
        }
        "boolean" => {
            if !value.is_boolean() {
                return Err(format!("{path}: expected a boolean, got {value}"));
            }
        }
        other => return Err(format!("{pointer}: unknown type {other:?}")),
    }
    Ok(())
}

/// Every schema the samples reached must have been exercised completely.
pub fn assert_covered(doc: &Value, seen: &Coverage, request_only: &[&str]) {
    let mut gaps = Vec::new();
    for name in at(doc, "/components/schemas").as_object().unwrap().keys() {
        let pointer = format!("/components/schemas/{}", escape(name));
        if !request_only.contains(&name.as_str()) && !seen.visited.contains(&pointer) {
            gaps.push(format!("{pointer}: no response of the code uses it"));
        }
    }
    for pointer in &seen.visited {
        let schema = at(doc, pointer);
        let required = strings(schema.get("required"));
        for name in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|p| p.keys())
        {
            let key = (pointer.clone(), name.clone());
            if !seen.present.contains(&key) {
                gaps.push(format!(
                    "{pointer}: property {name:?} never appears in what the code serializes"
                ));
            }
            if !required.contains(name) && !seen.absent.contains(&key) {
                gaps.push(format!(
                    "{pointer}: {name:?} is documented as optional but the code always sends it: list it in required"
                ));
            }
        }
        if schema.get("nullable") == Some(&Value::Bool(true)) && !seen.null.contains(pointer) {
            gaps.push(format!(
                "{pointer}: documented as nullable but the code never sends null"
            ));
        }
        for v in schema
            .get("enum")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !seen.values.contains(&(pointer.clone(), v.to_string())) {
                gaps.push(format!(
                    "{pointer}: enum value {v} is never produced by the code"
                ));
            }
        }
    }
    assert!(
        gaps.is_empty(),
        "openapi.json documents what the code does not produce:\n  {}",
        gaps.join("\n  ")
    );
}
