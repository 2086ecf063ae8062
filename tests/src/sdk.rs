//! Records what an AWS SDK client puts on the wire (DynamoDB, SSM: the JSON protocols), so a
//! test can count round trips without a proxy. Install with `.interceptor(requests.clone())`.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

/// One request as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct SentRequest {
    /// The operation (`GetItem`, `GetParameters`), from `x-amz-target`.
    pub operation: String,
    pub body: String,
}

impl SentRequest {
    /// A DynamoDB read asked to be strongly consistent.
    pub fn consistent_read(&self) -> bool {
        self.body.contains(r#""ConsistentRead":true"#)
    }
}

/// Every request a client sent, per attempt and after signing: retries included.
#[derive(Debug, Clone, Default)]
pub struct SentRequests(Arc<Mutex<Vec<SentRequest>>>);

impl SentRequests {
    /// The requests sent since the last call.
    pub fn take(&self) -> Vec<SentRequest> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// The operations sent since the last call, in order.
    pub fn take_operations(&self) -> Vec<String> {
        self.take().into_iter().map(|r| r.operation).collect()
    }
}

impl Intercept for SentRequests {
    fn name(&self) -> &'static str {
        "record-sent-requests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        // `<Service>_<version>.<Operation>` (DynamoDB) or `<Service>.<Operation>` (SSM).
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("")
            .to_owned();
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        self.0.lock().unwrap().push(SentRequest { operation, body });
        Ok(())
    }
}
