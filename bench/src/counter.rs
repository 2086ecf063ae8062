//! Counts the DynamoDB requests a piece of code makes, and the on-demand request units they
//! would consume in DynamoDB, estimated from the sizes of the items actually read and written
//! (an SDK interceptor on the bench's own client: the code under test is unchanged).
//!
//! Units (DynamoDB on-demand): a strongly consistent read costs 1 RRU per 4 KB read (at least
//! 1, also for a missing item; a Query sums its items' sizes); a standard write 1 WRU per 1 KB;
//! a transactional write 2 WRU per 1 KB of each item.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Requests by operation (GetItem, Query, TransactWriteItems, ...).
    pub ops: BTreeMap<String, u64>,
    pub read_units: f64,
    pub write_units: f64,
    /// Items written inside transactions, and the largest one (bytes).
    pub transact_items: u64,
    pub largest_item: u64,
}

impl Usage {
    pub fn ops_summary(&self, per: u64) -> String {
        let per = per.max(1) as f64;
        self.ops
            .iter()
            .map(|(op, n)| {
                let each = *n as f64 / per;
                if (each - each.round()).abs() < 0.05 {
                    format!("{} {op}", each.round())
                } else {
                    format!("{each:.2} {op}")
                }
            })
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

#[derive(Debug, Clone, Default)]
pub struct OpCounter {
    usage: Arc<Mutex<Usage>>,
}

impl OpCounter {
    pub fn take(&self) -> Usage {
        std::mem::take(&mut *self.usage.lock().unwrap())
    }
}

/// DynamoDB's item size from the wire format: attribute names plus values (S: UTF-8 bytes,
/// N: about one byte per two digits plus one, B: bytes, BOOL/NULL: 1, M/L: 3 plus contents).
pub fn item_size(item: &serde_json::Map<String, Value>) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

fn value_size(value: &Value) -> u64 {
    let Some(obj) = value.as_object() else {
        return 0;
    };
    let Some((kind, inner)) = obj.iter().next() else {
        return 0;
    };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, |s| s.len() as u64),
        "N" => inner.as_str().map_or(0, |s| s.len() as u64 / 2 + 1),
        "B" => inner.as_str().map_or(0, |s| s.len() as u64 * 3 / 4),
        "BOOL" | "NULL" => 1,
        "M" => 3 + inner.as_object().map_or(0, item_size),
        "L" => {
            3 + inner
                .as_array()
                .map_or(0, |l| l.iter().map(|v| 1 + value_size(v)).sum())
        }
        "SS" | "NS" | "BS" => inner.as_array().map_or(0, |l| {
            l.iter()
                .map(|v| v.as_str().map_or(0, |s| s.len() as u64))
                .sum()
        }),
        _ => 0,
    }
}

/// The same size rule over the SDK's attribute values (what a read returned).
pub fn map_size(item: &HashMap<String, AttributeValue>) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + attribute_size(value))
        .sum()
}

fn attribute_size(value: &AttributeValue) -> u64 {
    match value {
        AttributeValue::S(s) => s.len() as u64,
        AttributeValue::N(n) => n.len() as u64 / 2 + 1,
        AttributeValue::B(b) => b.as_ref().len() as u64,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(m) => 3 + map_size(m),
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + attribute_size(v)).sum::<u64>(),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(|s| s.len() as u64).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len() as u64).sum(),
        _ => 0,
    }
}

fn units(bytes: u64, unit: u64) -> f64 {
    bytes.div_ceil(unit).max(1) as f64
}

impl Intercept for OpCounter {
    fn name(&self) -> &'static str {
        "pss-bench-op-counter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let op = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_owned();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let mut usage = self.usage.lock().unwrap();
        *usage.ops.entry(op.clone()).or_default() += 1;
        match op.as_str() {
            "TransactWriteItems" => {
                for entry in body["TransactItems"].as_array().into_iter().flatten() {
                    let size = entry["Put"]["Item"].as_object().map_or(0, item_size);
                    usage.transact_items += 1;
                    usage.largest_item = usage.largest_item.max(size);
                    usage.write_units += 2.0 * units(size, 1024);
                }
            }
            "PutItem" => {
                let size = body["Item"].as_object().map_or(0, item_size);
                usage.largest_item = usage.largest_item.max(size);
                usage.write_units += units(size, 1024);
            }
            "UpdateItem" | "DeleteItem" => usage.write_units += 1.0,
            // Reads are counted from the response (the size read decides the units).
            _ => {}
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        let mut usage = self.usage.lock().unwrap();
        if let Some(out) = output.downcast_ref::<GetItemOutput>() {
            // A miss still costs one unit.
            let size = out.item.as_ref().map_or(0, map_size);
            usage.largest_item = usage.largest_item.max(size);
            usage.read_units += units(size, 4096);
        } else if let Some(out) = output.downcast_ref::<QueryOutput>() {
            // A Query sums the sizes of the items it read, then rounds up.
            let total: u64 = out.items().iter().map(map_size).sum();
            usage.read_units += units(total, 4096);
        }
        Ok(())
    }
}
