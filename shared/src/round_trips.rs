//! Counts the network round trips a piece of code makes and how many of them ran one after
//! another. In AWS a Stripe request costs 100–400 ms and a DynamoDB request 3–10 ms, while the
//! code between them costs microseconds, so what a person waits for is the length of the
//! longest chain of requests that did not overlap in time: the *sequential depth*.
//!
//! Tests and the bench install a [`RoundTrips`] recorder at the two edges: the Stripe
//! transport ([`crate::stripe::StripeApi::with_round_trips`]) and the DynamoDB client (an SDK
//! interceptor, [`RoundTrips::dynamo_interceptor`]). Production code never installs one.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// Which service a round trip went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Stripe,
    DynamoDb,
}

/// One request on the wire (one attempt: a retry is a round trip of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundTrip {
    pub service: Service,
    /// `GET /v1/subscriptions` (ids left out) or the DynamoDB operation (`Query`).
    pub operation: String,
    pub started: Instant,
    pub ended: Instant,
}

/// A shared recorder; clones record into the same list.
#[derive(Debug, Clone, Default)]
pub struct RoundTrips(Arc<Mutex<Vec<RoundTrip>>>);

impl RoundTrips {
    pub fn record(&self, service: Service, operation: String, started: Instant) {
        let trip = RoundTrip {
            service,
            operation,
            started,
            ended: Instant::now(),
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(trip);
    }

    /// The round trips recorded since the last call, in the order they ended.
    pub fn take(&self) -> Vec<RoundTrip> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// What was recorded since the last call, summarized.
    pub fn take_summary(&self) -> Summary {
        Summary::of(&self.take())
    }

    /// An interceptor for a DynamoDB client's config (`.interceptor(trips.dynamo_interceptor())`).
    pub fn dynamo_interceptor(&self) -> DynamoRoundTrips {
        DynamoRoundTrips(self.clone())
    }
}

/// Requests and sequential depth of one service, or of all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub requests: usize,
    pub sequential: usize,
}

/// A path's round trips: per service and overall.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub stripe: Count,
    pub dynamo: Count,
    pub all: Count,
    /// The operations, in the order they ended (`Stripe GET /v1/customers`, `DynamoDb Query`).
    pub operations: Vec<String>,
}

impl Summary {
    pub fn of(trips: &[RoundTrip]) -> Self {
        let count = |service: Option<Service>| {
            let chosen: Vec<&RoundTrip> = trips
                .iter()
                .filter(|t| service.is_none_or(|s| t.service == s))
                .collect();
            Count {
                requests: chosen.len(),
                sequential: sequential_depth(&chosen),
            }
        };
        Self {
            stripe: count(Some(Service::Stripe)),
            dynamo: count(Some(Service::DynamoDb)),
            all: count(None),
            operations: trips
                .iter()
                .map(|t| format!("{:?} {}", t.service, t.operation))
                .collect(),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Stripe {} requests ({} sequential), DynamoDB {} ({} sequential), {} sequential in all",
            self.stripe.requests,
            self.stripe.sequential,
            self.dynamo.requests,
            self.dynamo.sequential,
            self.all.sequential
        )
    }
}

/// The length of the longest chain of round trips in which each one started after the one
/// before it had ended. Two requests that overlapped in time cost one wait, not two.
pub fn sequential_depth(trips: &[&RoundTrip]) -> usize {
    let mut by_end: Vec<&RoundTrip> = trips.to_vec();
    by_end.sort_by_key(|t| t.ended);
    // longest[i]: the longest chain that ends with by_end[i].
    let mut longest: Vec<usize> = Vec::with_capacity(by_end.len());
    for (i, trip) in by_end.iter().enumerate() {
        let before = (0..i)
            .filter(|&j| by_end[j].ended <= trip.started)
            .map(|j| longest[j])
            .max()
            .unwrap_or(0);
        longest.push(before + 1);
    }
    longest.into_iter().max().unwrap_or(0)
}

/// The DynamoDB edge of a [`RoundTrips`] recorder: notes each attempt's start before it is
/// sent and records it when its response arrives.
#[derive(Debug, Clone)]
pub struct DynamoRoundTrips(RoundTrips);

#[derive(Debug, Clone)]
struct AttemptStarted {
    operation: String,
    at: Instant,
}

impl Storable for AttemptStarted {
    type Storer = StoreReplace<Self>;
}

impl Intercept for DynamoRoundTrips {
    fn name(&self) -> &'static str {
        "record-round-trips"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // `DynamoDB_20120810.Query` → `Query`.
        let operation = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("")
            .to_owned();
        cfg.interceptor_state().store_put(AttemptStarted {
            operation,
            at: Instant::now(),
        });
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(started) = cfg.load::<AttemptStarted>() {
            self.0
                .record(Service::DynamoDb, started.operation.clone(), started.at);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn trip(service: Service, from_ms: u64, to_ms: u64, base: Instant) -> RoundTrip {
        RoundTrip {
            service,
            operation: String::new(),
            started: base + Duration::from_millis(from_ms),
            ended: base + Duration::from_millis(to_ms),
        }
    }

    #[test]
    fn overlapping_requests_cost_one_wait() {
        let t0 = Instant::now();
        // 0-10 and 2-12 overlap; 12-20 starts after both; 11-30 overlaps 12-20 but starts
        // after 0-10 ended: the longest chain is 0-10 → 12-20 (or 2-12 → 12-20), length 2.
        let trips = [
            trip(Service::Stripe, 0, 10, t0),
            trip(Service::DynamoDb, 2, 12, t0),
            trip(Service::Stripe, 12, 20, t0),
            trip(Service::DynamoDb, 11, 30, t0),
        ];
        let summary = Summary::of(&trips);
        assert_eq!(summary.all.requests, 4);
        assert_eq!(summary.all.sequential, 2);
        assert_eq!(
            summary.stripe,
            Count {
                requests: 2,
                sequential: 2
            }
        );
        assert_eq!(
            summary.dynamo,
            Count {
                requests: 2,
                sequential: 1
            }
        );
    }

    #[test]
    fn a_chain_is_as_long_as_its_requests() {
        let t0 = Instant::now();
        let trips: Vec<RoundTrip> = (0..5)
            .map(|i| trip(Service::DynamoDb, i * 10, i * 10 + 5, t0))
            .collect();
        assert_eq!(Summary::of(&trips).dynamo.sequential, 5);
        assert_eq!(Summary::of(&[]).all, Count::default());
    }
}
