//! What one reconciliation run found and did: drift by kind, errors, the parked backlog, and
//! its EMF metric lines (formatted here, beside the report, so `metrics` knows nothing of
//! reconciliation).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metrics::{
    Directive, RECONCILE_DRIFT_FOUND, RECONCILE_DRIFT_REPAIRED, RECONCILE_ORG_ERRORS,
    RECONCILE_ORGS_CHECKED, RECONCILE_PARKED_BACKLOG, Unit, emit, line,
};

/// Kinds of drift, as counted in the report (and the metrics' `Kind` dimension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// Stripe has a subscription the table lacks.
    MissingSubscription,
    /// The stored copy differs from Stripe's (status, items, periods...).
    StaleSubscription,
    /// Stored but not in Stripe's list: re-read, and ended if Stripe no longer has it.
    ExtraSubscription,
    /// The entitlements item does not match the stored subscriptions.
    WrongEntitlements,
    MissingPaymentMethod,
    StalePaymentMethod,
    ExtraPaymentMethod,
    DefaultPaymentMethod,
    MissingInvoice,
    StaleInvoice,
    /// A parked event whose cause is fixed, now applied.
    ParkedEvent,
    /// An event Stripe could not deliver, now applied.
    UndeliveredEvent,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::MissingSubscription => "missing_subscription",
            DriftKind::StaleSubscription => "stale_subscription",
            DriftKind::ExtraSubscription => "extra_subscription",
            DriftKind::WrongEntitlements => "wrong_entitlements",
            DriftKind::MissingPaymentMethod => "missing_payment_method",
            DriftKind::StalePaymentMethod => "stale_payment_method",
            DriftKind::ExtraPaymentMethod => "extra_payment_method",
            DriftKind::DefaultPaymentMethod => "default_payment_method",
            DriftKind::MissingInvoice => "missing_invoice",
            DriftKind::StaleInvoice => "stale_invoice",
            DriftKind::ParkedEvent => "parked_event",
            DriftKind::UndeliveredEvent => "undelivered_event",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DriftCount {
    pub found: u64,
    pub repaired: u64,
}

/// What one run found and did: logged as one JSON line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub orgs_checked: u64,
    /// Orgs whose sync failed (Stripe or DynamoDB): retried on the next pass.
    pub org_errors: u64,
    pub drift: BTreeMap<DriftKind, DriftCount>,
    /// Parked events still waiting for their cause to be fixed.
    pub still_parked: u64,
    /// Parked events Stripe no longer returns (older than 30 days): they expire by TTL.
    pub parked_unrecoverable: u64,
    /// Parked events left for the next run: this run's parked budget or cap was used up.
    pub parked_deferred: u64,
    /// Parked events of customers still linked to no org: skipped without a Stripe request.
    pub parked_skipped_unlinked: u64,
    /// Prices on stored subscriptions that map to no module (they grant nothing): fix the
    /// catalog (`service_module` metadata or a lookup key).
    pub unmapped_prices: Vec<String>,
    /// Stripe 404s that nothing confirmed: nothing was ended (see `sync`).
    pub not_found_unconfirmed: u64,
    /// Orgs whose customer link was marked deleted but whose customer Stripe still has: linked
    /// again and re-synced.
    pub links_restored: u64,
    pub events_checked: u64,
    pub event_errors: u64,
    pub stripe_requests: u64,
    /// Whether this run finished a pass over every org.
    pub pass_complete: bool,
    pub duration_ms: u64,
}

impl Report {
    pub(super) fn found(&mut self, kind: DriftKind, n: u64, repaired: bool) {
        if n == 0 {
            return;
        }
        let count = self.drift.entry(kind).or_default();
        count.found += n;
        if repaired {
            count.repaired += n;
        }
    }

    pub fn drift_found(&self) -> u64 {
        self.drift.values().map(|c| c.found).sum()
    }

    pub fn drift_repaired(&self) -> u64 {
        self.drift.values().map(|c| c.repaired).sum()
    }
}

/// A run's metric lines: totals (no dimension), then one line per drift kind found.
pub fn metric_lines(report: &Report, timestamp_ms: i64) -> Vec<String> {
    let totals = line(
        &[Directive {
            dimension_sets: &[&[]],
            metrics: &[
                (
                    RECONCILE_DRIFT_FOUND,
                    report.drift_found() as f64,
                    Unit::Count,
                ),
                (
                    RECONCILE_DRIFT_REPAIRED,
                    report.drift_repaired() as f64,
                    Unit::Count,
                ),
                (RECONCILE_ORG_ERRORS, report.org_errors as f64, Unit::Count),
                (
                    RECONCILE_PARKED_BACKLOG,
                    report.still_parked as f64,
                    Unit::Count,
                ),
                (
                    RECONCILE_ORGS_CHECKED,
                    report.orgs_checked as f64,
                    Unit::Count,
                ),
            ],
        }],
        &[],
        timestamp_ms,
    );
    let mut lines = vec![totals];
    for (kind, count) in &report.drift {
        lines.push(line(
            &[Directive {
                dimension_sets: &[&["Kind"]],
                metrics: &[
                    (RECONCILE_DRIFT_FOUND, count.found as f64, Unit::Count),
                    (RECONCILE_DRIFT_REPAIRED, count.repaired as f64, Unit::Count),
                ],
            }],
            &[("Kind", kind.as_str())],
            timestamp_ms,
        ));
    }
    lines
}

/// Prints the run's metric lines.
pub fn emit_metrics(report: &Report) {
    let now_ms = crate::domain::FetchTime::now().micros() / 1_000;
    for l in metric_lines(report, now_ms) {
        emit(&l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn metric_lines_give_totals_and_one_line_per_kind() {
        let mut report = Report {
            orgs_checked: 7,
            org_errors: 1,
            still_parked: 2,
            ..Report::default()
        };
        report.found(DriftKind::StaleSubscription, 3, true);
        report.found(DriftKind::WrongEntitlements, 1, false);
        let lines: Vec<Value> = metric_lines(&report, 1)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        let totals = &lines[0];
        assert_eq!(
            totals["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([[]])
        );
        for (metric, value) in [
            (RECONCILE_DRIFT_FOUND, 4.0),
            (RECONCILE_DRIFT_REPAIRED, 3.0),
            (RECONCILE_ORG_ERRORS, 1.0),
            (RECONCILE_PARKED_BACKLOG, 2.0),
            (RECONCILE_ORGS_CHECKED, 7.0),
        ] {
            assert_eq!(totals[metric], value, "{metric}");
        }
        assert_eq!(lines[1]["Kind"], "stale_subscription");
        assert_eq!(lines[1][RECONCILE_DRIFT_FOUND], 3.0);
        assert_eq!(lines[2]["Kind"], "wrong_entitlements");
        assert_eq!(lines[2][RECONCILE_DRIFT_REPAIRED], 0.0);
        assert_eq!(
            lines[2]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Kind"]])
        );
    }
}
