//! Round trips of the three hot paths of issue 25, counted in process with the
//! `billing::round_trips` recorders: one at the Stripe transport
//! (`StripeApi::with_round_trips`), one at the DynamoDB SDK client (an interceptor). Each path
//! is driven as `tests/tests/round_trips.rs` drives it, against the bench's moto and fixture
//! Stripe (its catalog synced by the seed), on a table of its own so that the bench table the
//! functions run against does not grow.
//!
//! What is reported is counts, not times: requests per service and their *sequential depth*,
//! the longest chain of requests that did not overlap in time. In AWS a Stripe request costs
//! 100-400 ms and a DynamoDB request 3-10 ms, so the depth is what a person waits for on any
//! machine.

use billing::api::{self, ApiConfig, OriginAllowlist};
use billing::domain::{CustomerId, GracePolicy, OrgId, Timestamp};
use billing::round_trips::{Count, RoundTrips, Summary};
use billing::routes::Role;
use billing::store::BillingStore;
use billing::store::table::create_table;
use billing::sync::Syncer;
use billing::webhook::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_TOLERANCE_SECONDS, WebhookConfig, WebhookHandler, WebhookSecret,
};
use pss_local::fixtures::{fake_put, subscription_object};
use pss_local::http::{blocking, post_json};
use serde_json::json;

use crate::setup::{self, FRONTEND_ORIGINS, WEBHOOK_SECRET, World};

/// The recorded paths' own table in moto (deleted when they are done).
const TABLE: &str = "pss-bench-round-trips";

/// One path: what it is, issue 25's figures before the change, its target, and each run's
/// summary (or why the run failed).
pub struct PathTrips {
    pub path: &'static str,
    pub before: &'static str,
    pub target: &'static str,
    /// Whether a summary meets the target.
    pub meets: fn(&Summary) -> bool,
    pub runs: Vec<Result<Summary, String>>,
}

impl PathTrips {
    fn new(
        path: &'static str,
        before: &'static str,
        target: &'static str,
        meets: fn(&Summary) -> bool,
    ) -> Self {
        Self {
            path,
            before,
            target,
            meets,
            runs: Vec::new(),
        }
    }

    pub fn summaries(&self) -> impl Iterator<Item = &Summary> {
        self.runs.iter().filter_map(|r| r.as_ref().ok())
    }

    /// The largest of each count over the runs (the worst a run waited).
    pub fn worst(&self) -> Option<Summary> {
        let max = |a: Count, b: Count| Count {
            requests: a.requests.max(b.requests),
            sequential: a.sequential.max(b.sequential),
        };
        self.summaries().cloned().reduce(|a, b| Summary {
            stripe: max(a.stripe, b.stripe),
            dynamo: max(a.dynamo, b.dynamo),
            all: max(a.all, b.all),
            operations: if b.all.sequential > a.all.sequential {
                b.operations
            } else {
                a.operations
            },
        })
    }

    /// The smallest and the largest of one count over the runs.
    pub fn spread(&self, pick: fn(&Summary) -> Count) -> Option<(Count, Count)> {
        self.summaries().map(pick).fold(None, |acc, c| {
            Some(match acc {
                None => (c, c),
                Some((lo, hi)) => (
                    Count {
                        requests: lo.requests.min(c.requests),
                        sequential: lo.sequential.min(c.sequential),
                    },
                    Count {
                        requests: hi.requests.max(c.requests),
                        sequential: hi.sequential.max(c.sequential),
                    },
                ),
            })
        })
    }

    /// Whether every run counted the same.
    pub fn steady(&self) -> bool {
        let mut counts = self.summaries().map(|s| (s.stripe, s.dynamo, s.all));
        let first = counts.next();
        counts.all(|c| Some(c) == first)
    }

    pub fn failures(&self) -> impl Iterator<Item = &String> {
        self.runs.iter().filter_map(|r| r.as_ref().err())
    }

    /// Met when at least one run succeeded, no run failed, and the worst run meets the target.
    pub fn met(&self) -> bool {
        self.failures().next().is_none() && self.worst().is_some_and(|w| (self.meets)(&w))
    }
}

pub struct RoundTripResults {
    pub sync: PathTrips,
    pub checkout: PathTrips,
    pub webhook: PathTrips,
}

impl RoundTripResults {
    pub fn paths(&self) -> [&PathTrips; 3] {
        [&self.sync, &self.checkout, &self.webhook]
    }
}

/// A syncer whose Stripe transport and DynamoDB client record every request into `trips`.
fn recorded_syncer(world: &World, trips: &RoundTrips) -> Syncer {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(&world.moto.url)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "bench", "bench", None, None, "bench",
        ))
        .interceptor(trips.dynamo_interceptor())
        .build();
    Syncer::new(
        BillingStore::new(aws_sdk_dynamodb::Client::from_conf(config), TABLE),
        setup::stripe_api(world).with_round_trips(trips.clone()),
        GracePolicy::default(),
    )
}

fn api_config() -> ApiConfig {
    ApiConfig {
        origins: OriginAllowlist::parse(FRONTEND_ORIGINS),
        sync_per_minute: 1_000_000,
        offer: Default::default(),
    }
}

/// A name no other run of this process (or an earlier bench against the same emulators) used.
fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn checkout_body(services: &[&str], interval: &str) -> Vec<u8> {
    json!({
        "services": services,
        "interval": interval,
        "successUrl": format!("{FRONTEND_ORIGINS}/billing/success"),
        "cancelUrl": format!("{FRONTEND_ORIGINS}/billing"),
    })
    .to_string()
    .into_bytes()
}

async fn customer_of(syncer: &Syncer, org: &OrgId) -> Result<CustomerId, String> {
    Ok(syncer
        .store
        .billing_profile(org)
        .await
        .map_err(|e| format!("billing profile: {e:?}"))?
        .ok_or("no billing profile after a checkout")?
        .customer_id)
}

/// The fixture Stripe's "the customer paid" for a Checkout Session.
async fn complete_session(
    world: &World,
    session_id: &str,
    subscription: &str,
) -> Result<(), String> {
    let url = format!("{}/_test/checkout/{session_id}/complete", world.stripe.url);
    let body = json!({ "subscription": subscription });
    let reply = blocking(move || post_json(&url, &body)).await;
    if reply.status == 200 {
        Ok(())
    } else {
        Err(format!(
            "completing {session_id}: {} {}",
            reply.status, reply.body
        ))
    }
}

async fn checkout(
    syncer: &Syncer,
    org: &OrgId,
    services: &[&str],
    interval: &str,
) -> Result<api::views::CheckoutView, String> {
    api::checkout(
        syncer,
        &api_config(),
        org,
        Role::Owner,
        &checkout_body(services, interval),
    )
    .await
    .map_err(|e| format!("checkout: {e:?}"))
}

/// The success page's sync after a completed checkout, for an org whose customer has three
/// subscriptions in Stripe (the one the checkout made, a yearly plan and an ended one).
async fn sync_run(world: &World, syncer: &Syncer, trips: &RoundTrips) -> Result<Summary, String> {
    let org = OrgId::parse(unique("org_trips_sync_")).map_err(|e| e.to_string())?;
    let session = checkout(syncer, &org, &["LeadGeneration"], "month").await?;
    let customer = customer_of(syncer, &org).await?;
    let paid = unique("sub_trips_");
    for (id, status, price) in [
        (paid.clone(), "active", "leadgen_monthly"),
        (unique("sub_trips_"), "active", "email_automation_yearly"),
        (unique("sub_trips_"), "canceled", "social_inbox_monthly"),
    ] {
        let object = subscription_object(&id, customer.as_str(), status, &[(price, 1)]);
        fake_put(&world.stripe.url, &object).await;
    }
    complete_session(world, &session.session_id, &paid).await?;
    trips.take();
    let overview = api::sync(syncer, &api_config(), &org, Some(&session.session_id)).await;
    let summary = trips.take_summary();
    let overview = overview.map_err(|e| format!("sync: {e:?}"))?;
    if overview.subscriptions.is_empty() {
        return Err("sync answered no subscription".to_owned());
    }
    Ok(summary)
}

/// A checkout click for an org with a customer, a monthly plan and a session left open by an
/// earlier click: the earlier session is expired and a new one created.
async fn checkout_run(
    world: &World,
    syncer: &Syncer,
    trips: &RoundTrips,
) -> Result<Summary, String> {
    let org = OrgId::parse(unique("org_trips_click_")).map_err(|e| e.to_string())?;
    let first = checkout(syncer, &org, &["LeadGeneration"], "month").await?;
    let customer = customer_of(syncer, &org).await?;
    let plan = unique("sub_trips_");
    let object = subscription_object(
        &plan,
        customer.as_str(),
        "active",
        &[("leadgen_monthly", 1)],
    );
    fake_put(&world.stripe.url, &object).await;
    complete_session(world, &first.session_id, &plan).await?;
    checkout(syncer, &org, &["EmailAutomation"], "year").await?;
    trips.take();
    let click = checkout(syncer, &org, &["EmailAutomation", "Integrations"], "year").await;
    let summary = trips.take_summary();
    click?;
    Ok(summary)
}

/// A `customer.subscription.updated` event (a change of seats) for an org that already had
/// its subscription's first event: verify, marker, Stripe re-read, effect and audit trail.
async fn webhook_run(
    world: &World,
    syncer: &Syncer,
    trips: &RoundTrips,
) -> Result<Summary, String> {
    let org = OrgId::parse(unique("org_trips_event_")).map_err(|e| e.to_string())?;
    let customer = CustomerId::parse(unique("cus_trips_")).map_err(|e| e.to_string())?;
    syncer
        .store
        .link_customer(&org, &customer)
        .await
        .map_err(|e| format!("link: {e:?}"))?;
    let sub = unique("sub_trips_");
    let handler = WebhookHandler::new(
        syncer.clone(),
        WebhookConfig {
            secrets: vec![WebhookSecret::new(WEBHOOK_SECRET)],
            tolerance_seconds: DEFAULT_TOLERANCE_SECONDS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            livemode: false,
        },
    );
    let mut last = None;
    for (kind, seats) in [
        ("customer.subscription.created", 1),
        ("customer.subscription.updated", 2),
    ] {
        let object = subscription_object(
            &sub,
            customer.as_str(),
            "active",
            &[("advanced_analytics_monthly", seats)],
        );
        fake_put(&world.stripe.url, &object).await;
        let event = json!({
            "id": unique("evt_trips_"),
            "object": "event",
            "type": kind,
            "livemode": false,
            "created": Timestamp::now().unix(),
            "api_version": billing::stripe::API_VERSION,
            "data": { "object": object },
        });
        let body = event.to_string();
        let now = Timestamp::now().unix();
        let signature = WebhookSecret::new(WEBHOOK_SECRET).sign(now, body.as_bytes());
        trips.take();
        let outcome = handler
            .process(Some(&signature), body.as_bytes(), now)
            .await;
        let summary = trips.take_summary();
        if outcome.label() != "processed" {
            return Err(format!("{kind}: {} ({outcome:?})", outcome.label()));
        }
        last = Some(summary);
    }
    Ok(last.expect("two events"))
}

fn sync_meets(s: &Summary) -> bool {
    s.stripe.sequential <= 2 && s.dynamo.sequential <= 3
}

fn checkout_meets(s: &Summary) -> bool {
    s.stripe.sequential <= 3
}

fn webhook_meets(s: &Summary) -> bool {
    s.all.sequential <= 3 && s.all.requests <= 4
}

/// Each path `runs` times (a fresh org each time), in turn.
pub async fn round_trips(world: &World, runs: usize) -> RoundTripResults {
    let mut results = RoundTripResults {
        sync: PathTrips::new(
            "success-page sync (3 subscriptions in Stripe)",
            "5 + N sequential Stripe (6 for one subscription)",
            "≤ 2 sequential Stripe, ≤ 3 sequential DynamoDB",
            sync_meets,
        ),
        checkout: PathTrips::new(
            "checkout click (org with a customer, a plan and an open session)",
            "4–5 sequential Stripe",
            "≤ 3 sequential Stripe",
            checkout_meets,
        ),
        webhook: PathTrips::new(
            "webhook `customer.subscription.updated`, audit included",
            "7 sequential round trips (1 Stripe + 6 DynamoDB)",
            "≤ 3 sequential, ≤ 4 in all",
            webhook_meets,
        ),
    };
    if let Err(e) = create_table(&world.client, TABLE).await {
        let error = format!("cannot create {TABLE}: {e:?}");
        for path in [
            &mut results.sync,
            &mut results.checkout,
            &mut results.webhook,
        ] {
            path.runs.push(Err(error.clone()));
        }
        return results;
    }
    // Each run with new clients and an empty price cache, as a new container has and as
    // tests/tests/round_trips.rs measures: a later run would otherwise find its prices cached.
    for _ in 0..runs {
        let fresh = || {
            let trips = RoundTrips::default();
            (recorded_syncer(world, &trips), trips)
        };
        let (syncer, trips) = fresh();
        results
            .sync
            .runs
            .push(sync_run(world, &syncer, &trips).await);
        let (syncer, trips) = fresh();
        results
            .checkout
            .runs
            .push(checkout_run(world, &syncer, &trips).await);
        let (syncer, trips) = fresh();
        results
            .webhook
            .runs
            .push(webhook_run(world, &syncer, &trips).await);
    }
    // moto keeps every table in memory and copies tables on transactions: leave it as it was.
    let _ = world.client.delete_table().table_name(TABLE).send().await;
    results
}
