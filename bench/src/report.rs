//! The one table: every figure, the Python peer beside the Rust one, the cost per million, and
//! the targets with met / not met; then the assumptions and what dominates each miss.

use std::fmt::Write as _;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::counter::OpCounter;
use crate::inproc::{AuthorizerResults, Primitives, WebhookResults};
use crate::setup::{self, World};
use crate::stats::{fmt_dur, ms, ratio, us};
use crate::trips::RoundTripResults;
use crate::{FunctionResult, Plan, RUN_BUDGET, WARM_CAP, WARM_UP};
use billing::round_trips::Count;

// Public prices (assumptions, us-east-1, as published when this was written).
const LAMBDA_ARM_USD_PER_GB_S: f64 = 0.000_013_333_4;
const LAMBDA_USD_PER_M_REQUESTS: f64 = 0.20;
const DDB_USD_PER_M_WRU: f64 = 0.625;
const DDB_USD_PER_M_RRU: f64 = 0.125;
const MEMORY_MB: f64 = 128.0;

const COLD_TARGET: Duration = Duration::from_millis(30);
const AUTH_P99_TARGET: Duration = Duration::from_millis(1);
const HOOK_INPROC_TARGET: Duration = Duration::from_micros(200);
const HOOK_E2E_TARGET: Duration = Duration::from_millis(20);
const BINARY_TARGET_MIB: f64 = 8.0;
const RSS_TARGET_MIB: f64 = 32.0;
const INIT_TARGET: Duration = Duration::from_millis(20);
/// Init at least this many times faster than the Python peer's.
const INIT_VS_PEER_TARGET: f64 = 10.0;

pub struct Inputs<'a> {
    pub functions: &'a [FunctionResult],
    pub peer: &'a FunctionResult,
    /// Size of the subscription row the Python peer writes (bytes).
    pub peer_row_bytes: u64,
    pub auth: &'a AuthorizerResults,
    pub hook: &'a WebhookResults,
    /// Round trips of the three hot paths (issue 25), counted in process.
    pub trips: &'a RoundTripResults,
    pub primitives: &'a Primitives,
    /// The same, measured again after every function ran.
    pub primitives_end: &'a Primitives,
    pub plan: Plan,
    pub elapsed: Duration,
}

/// The size of the row the Python peer wrote (read back through the counting client).
pub async fn python_row_size(world: &World) -> u64 {
    let counter = OpCounter::default();
    let client = setup::dynamo_client(&world.moto.url, Some(counter.clone()));
    let _ = client
        .get_item()
        .table_name(setup::TABLE)
        .key("PK", AttributeValue::S(format!("ORG#{}", setup::ORG)))
        .key("SK", AttributeValue::S("SUB#sub_sample".to_owned()))
        .consistent_read(true)
        .send()
        .await;
    counter.take().largest_item
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn met(ok: bool) -> String {
    if ok { "met" } else { "**not met**" }.to_owned()
}

/// Billed duration (rounded up to 1 ms), GB-seconds and dollars per million invocations.
fn lambda_cost(p50: Duration) -> (f64, f64, f64) {
    let billed_ms = ms(p50).ceil().max(1.0);
    let gb_s = 1e6 * billed_ms / 1000.0 * (MEMORY_MB / 1024.0);
    let usd = gb_s * LAMBDA_ARM_USD_PER_GB_S + LAMBDA_USD_PER_M_REQUESTS;
    (billed_ms, gb_s, usd)
}

fn cold_cell(c: &crate::process::ColdResult) -> String {
    if c.total.is_empty() {
        return format!("failed: {}", c.first_error.as_deref().unwrap_or("?"));
    }
    let mut s = format!(
        "{:.1} / {:.1} / {:.1} ms; init {:.1} ms",
        ms(c.total.min()),
        ms(c.total.median()),
        ms(c.total.pct(0.95)),
        ms(c.init.median())
    );
    if c.failures > 0 {
        let _ = write!(
            s,
            " ({} failed: {})",
            c.failures,
            c.first_error.as_deref().unwrap_or("?")
        );
    }
    s
}

fn warm_cell(w: &crate::process::WarmResult) -> String {
    if w.latency.is_empty() {
        return format!("failed: {}", w.first_error.as_deref().unwrap_or("?"));
    }
    let mut s = format!(
        "{} / {} (n={}{})",
        fmt_dur(w.latency.median()),
        fmt_dur(w.latency.pct(0.99)),
        w.latency.len(),
        if w.capped { ", time-capped" } else { "" }
    );
    if w.failures > 0 {
        let _ = write!(
            s,
            " ({} failed: {})",
            w.failures,
            w.first_error.as_deref().unwrap_or("?")
        );
    }
    s
}

struct Table {
    rows: Vec<[String; 7]>,
}

impl Table {
    fn row(&mut self, cells: [&str; 7]) {
        self.rows.push(cells.map(|c| c.replace('|', "\\|")));
    }

    fn render(&self) -> String {
        let mut out = String::from(
            "| area | measurement | Rust | Python peer | Python ÷ Rust | target | status |\n|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r[0], r[1], r[2], r[3], r[4], r[5], r[6]
            );
        }
        out
    }
}

fn per_event(total: f64, n: usize) -> f64 {
    if n == 0 { 0.0 } else { total / n as f64 }
}

pub fn render(input: &Inputs<'_>) -> String {
    let Inputs {
        functions,
        peer,
        peer_row_bytes,
        auth,
        hook,
        trips,
        primitives: prim,
        primitives_end: prim_end,
        plan,
        elapsed,
    } = *input;
    let mut t = Table { rows: Vec::new() };
    let webhook = functions.iter().find(|f| f.name == "stripe-webhook");
    let authorizer = functions.iter().find(|f| f.name == "authorizer");

    // ---- cold start ------------------------------------------------------------------------
    for f in functions {
        let is_hook = f.name == "stripe-webhook";
        let median = f.cold.total.median();
        t.row([
            "cold start",
            &format!(
                "`{}` exec → first response, min / median / p95 ({} runs)",
                f.name, plan.cold_runs
            ),
            &cold_cell(&f.cold),
            &if is_hook {
                cold_cell(&peer.cold)
            } else {
                String::new()
            },
            &if is_hook {
                ratio(ms(peer.cold.total.median()), ms(median))
            } else {
                String::new()
            },
            "median ≤ 30 ms",
            &met(!f.cold.total.is_empty() && median <= COLD_TARGET),
        ]);
    }
    // ---- warm ---------------------------------------------------------------------------------
    for f in functions {
        let is_hook = f.name == "stripe-webhook";
        t.row([
            "warm",
            &format!(
                "`{}` per invocation through the Runtime API, p50 / p99",
                f.name
            ),
            &if is_hook {
                format!(
                    "{}; per event {} + 1 Stripe GET",
                    warm_cell(&f.warm),
                    hook.e2e_usage.ops_summary(hook.end_to_end.len() as u64)
                )
            } else {
                warm_cell(&f.warm)
            },
            &if is_hook {
                format!("{}; per event 2 PutItem", warm_cell(&peer.warm))
            } else {
                String::new()
            },
            &if is_hook {
                ratio(ms(peer.warm.latency.median()), ms(f.warm.latency.median()))
            } else {
                String::new()
            },
            "",
            "",
        ]);
    }
    // ---- in process ---------------------------------------------------------------------------
    t.row([
        "authorizer",
        "decision in process, warm cache (JWT HS256 verify + route + cached entitlements), p50 / p99",
        &format!(
            "{:.1} / {:.1} µs; {:.0} decisions/s (n={})",
            us(auth.warm.median()),
            us(auth.warm.pct(0.99)),
            auth.warm.per_second(),
            auth.warm.len()
        ),
        "",
        "",
        "p99 ≤ 1 ms",
        &met(!auth.warm.is_empty() && auth.warm.pct(0.99) <= AUTH_P99_TARGET),
    ]);
    t.row([
        "authorizer",
        "uncached check in process (+ 1 consistent GetItem against moto), p50 / p99",
        &format!(
            "{} / {}; {:.0} checks/s (n={}; {} per check)",
            fmt_dur(auth.uncached.median()),
            fmt_dur(auth.uncached.pct(0.99)),
            auth.uncached.per_second(),
            auth.uncached.len(),
            auth.uncached_usage.ops_summary(auth.uncached.len() as u64)
        ),
        "",
        "",
        "",
        &if auth.refusals > 0 {
            format!("{} refused", auth.refusals)
        } else {
            String::new()
        },
    ]);
    t.row([
        "webhook",
        &format!(
            "in process: verify + parse + decide, mean (p50 / p99), {} samples in turn",
            hook.samples_used
        ),
        &format!(
            "{:.1} µs ({:.1} / {:.1} µs); {:.0} events/s (n={})",
            us(hook.in_process.mean()),
            us(hook.in_process.median()),
            us(hook.in_process.pct(0.99)),
            hook.in_process.per_second(),
            hook.in_process.len()
        ),
        "",
        "",
        "≤ 200 µs/event",
        &met(!hook.in_process.is_empty() && hook.in_process.mean() <= HOOK_INPROC_TARGET),
    ]);
    let n_e2e = hook.end_to_end.len();
    let usage = &hook.e2e_usage;
    t.row([
        "webhook",
        &format!(
            "end to end in process (`{}`: Stripe re-fetch + store) against moto + fake Stripe, p50 / p99",
            setup::WEBHOOK_SAMPLE
        ),
        &format!(
            "{} / {}; {:.0} events/s (n={}{}; {} per event)",
            fmt_dur(hook.end_to_end.median()),
            fmt_dur(hook.end_to_end.pct(0.99)),
            hook.end_to_end.per_second(),
            n_e2e,
            if hook.e2e_failures > 0 {
                format!(
                    ", {} failed: {}",
                    hook.e2e_failures,
                    hook.e2e_first_error.as_deref().unwrap_or("?")
                )
            } else {
                String::new()
            },
            usage.ops_summary(n_e2e as u64)
        ),
        "",
        "",
        "p50 ≤ 20 ms",
        &met(n_e2e > 0 && hook.end_to_end.median() <= HOOK_E2E_TARGET),
    ]);
    // ---- memory and size --------------------------------------------------------------------
    for f in functions {
        let is_hook = f.name == "stripe-webhook";
        let rss = mib(f.warm.peak_rss_kib * 1024);
        t.row([
            "memory",
            &format!("`{}` peak RSS (VmHWM) after its warm run", f.name),
            &format!("{rss:.1} MiB"),
            &if is_hook {
                format!("{:.1} MiB", mib(peer.warm.peak_rss_kib * 1024))
            } else {
                String::new()
            },
            &if is_hook {
                ratio(peer.warm.peak_rss_kib as f64, f.warm.peak_rss_kib as f64)
            } else {
                String::new()
            },
            "≤ 32 MiB",
            &met(f.warm.peak_rss_kib > 0 && rss <= RSS_TARGET_MIB),
        ]);
    }
    for f in functions {
        let is_hook = f.name == "stripe-webhook";
        let size = mib(f.binary_bytes);
        t.row([
            "size",
            &format!("`{}` stripped binary / deployment zip", f.name),
            &format!("{size:.2} / {:.2} MiB", mib(f.zip_bytes)),
            &if is_hook {
                format!(
                    "{:.2} / {:.2} MiB (handler + stripe + requests deps)",
                    mib(peer.binary_bytes),
                    mib(peer.zip_bytes)
                )
            } else {
                String::new()
            },
            &if is_hook {
                ratio(peer.zip_bytes as f64, f.zip_bytes as f64) + " (zip)"
            } else {
                String::new()
            },
            "binary ≤ 8 MiB",
            &met(f.binary_bytes > 0 && size <= BINARY_TARGET_MIB),
        ]);
    }
    // ---- cost per million -----------------------------------------------------------------
    let auth_p50 = authorizer
        .map(|a| a.warm.latency.median())
        .unwrap_or_default();
    let (a_ms, a_gbs, a_usd) = lambda_cost(auth_p50);
    t.row([
        "cost / 1M",
        "access checks: Lambda (128 MB, billed = warm p50 rounded up to 1 ms)",
        &format!(
            "{a_ms:.0} ms → {a_gbs:.0} GB-s = ${:.4} + $0.20 requests = ${a_usd:.4}",
            a_gbs * LAMBDA_ARM_USD_PER_GB_S
        ),
        "",
        "",
        "",
        "",
    ]);
    let rru_check = per_event(auth.uncached_usage.read_units, auth.uncached.len());
    t.row([
        "cost / 1M",
        "access checks: DynamoDB, every check uncached (1 consistent GetItem ≤ 4 KB = 1 RRU)",
        &format!(
            "{rru_check:.2} RRU/check → {:.2} M RRU = ${:.4}",
            rru_check,
            rru_check * DDB_USD_PER_M_RRU
        ),
        "",
        "",
        "",
        "",
    ]);
    let hook_p50 = webhook.map(|w| w.warm.latency.median()).unwrap_or_default();
    let (h_ms, h_gbs, h_usd) = lambda_cost(hook_p50);
    let (p_ms, p_gbs, p_usd) = lambda_cost(peer.warm.latency.median());
    t.row([
        "cost / 1M",
        "webhook events: Lambda (128 MB, billed = warm p50 against moto, rounded up to 1 ms)",
        &format!("{h_ms:.0} ms → {h_gbs:.0} GB-s = ${h_usd:.4}"),
        &format!("{p_ms:.0} ms → {p_gbs:.0} GB-s = ${p_usd:.4}"),
        &ratio(p_usd, h_usd),
        "",
        "",
    ]);
    let rru_event = per_event(usage.read_units, n_e2e);
    let wru_event = per_event(usage.write_units, n_e2e);
    let hook_ddb = rru_event * DDB_USD_PER_M_RRU + wru_event * DDB_USD_PER_M_WRU;
    let peer_wru = 1.0 + (peer_row_bytes.div_ceil(1024).max(1)) as f64;
    let peer_ddb = peer_wru * DDB_USD_PER_M_WRU;
    t.row([
        "cost / 1M",
        "webhook events: DynamoDB on demand (units from the sizes of the items read and written)",
        &format!(
            "{rru_event:.2} RRU + {wru_event:.2} WRU per event ({} transactional items/event, largest {:.1} KB) = ${hook_ddb:.3}",
            per_event(usage.transact_items as f64, n_e2e),
            usage.largest_item as f64 / 1024.0
        ),
        &format!(
            "0 RRU + {peer_wru:.0} WRU (marker 1 + row {:.1} KB) = ${peer_ddb:.3}",
            peer_row_bytes as f64 / 1024.0
        ),
        &ratio(peer_ddb, hook_ddb),
        "",
        "",
    ]);
    t.row([
        "cost / 1M",
        "webhook events: total (Lambda + DynamoDB)",
        &format!("${:.3}", h_usd + hook_ddb),
        &format!("${:.3}", p_usd + peer_ddb),
        &ratio(p_usd + peer_ddb, h_usd + hook_ddb),
        "",
        "",
    ]);

    // ---- targets summary ------------------------------------------------------------------
    let cold_misses: Vec<&FunctionResult> = functions
        .iter()
        .filter(|f| f.cold.total.is_empty() || f.cold.total.median() > COLD_TARGET)
        .collect();
    let slowest_cold = functions
        .iter()
        .max_by_key(|f| f.cold.total.median())
        .map(|f| {
            format!(
                "slowest median {} (`{}`)",
                fmt_dur(f.cold.total.median()),
                f.name
            )
        })
        .unwrap_or_default();
    t.row([
        "targets",
        "cold start median ≤ 30 ms, every function",
        &format!(
            "{} of {} met; {slowest_cold}",
            functions.len() - cold_misses.len(),
            functions.len()
        ),
        "",
        "",
        "≤ 30 ms",
        &met(cold_misses.is_empty()),
    ]);
    let largest_bin = functions.iter().max_by_key(|f| f.binary_bytes);
    let largest_rss = functions.iter().max_by_key(|f| f.warm.peak_rss_kib);
    t.row([
        "targets",
        "each stripped binary ≤ 8 MiB; each peak RSS ≤ 32 MiB",
        &format!(
            "largest binary {:.2} MiB (`{}`); largest RSS {:.1} MiB (`{}`)",
            largest_bin.map_or(0.0, |f| mib(f.binary_bytes)),
            largest_bin.map_or("", |f| f.name.as_str()),
            largest_rss.map_or(0.0, |f| mib(f.warm.peak_rss_kib * 1024)),
            largest_rss.map_or("", |f| f.name.as_str()),
        ),
        "",
        "",
        "≤ 8 / ≤ 32 MiB",
        &met(
            largest_bin.is_some_and(|f| mib(f.binary_bytes) <= BINARY_TARGET_MIB)
                && largest_rss.is_some_and(|f| mib(f.warm.peak_rss_kib * 1024) <= RSS_TARGET_MIB),
        ),
    ]);

    let mut out = String::from("# pss-billing benchmark\n\n");
    out.push_str(&round_trip_table(trips));
    out.push('\n');
    out.push_str(&side_by_side(functions, peer));
    out.push('\n');
    out.push_str(&t.render());

    // ---- notes ----------------------------------------------------------------------------
    let _ = writeln!(out, "\nAssumptions and method:");
    let _ = writeln!(
        out,
        "- Prices (public list prices, us-east-1, assumed): Lambda arm64 ${LAMBDA_ARM_USD_PER_GB_S} per GB-s and ${LAMBDA_USD_PER_M_REQUESTS:.2} per 1M requests; DynamoDB on demand ${DDB_USD_PER_M_WRU} per 1M WRU and ${DDB_USD_PER_M_RRU} per 1M RRU. 128 MB memory. Durations here are on x86-64 against loopback emulators, not on Lambda arm64."
    );
    let _ = writeln!(
        out,
        "- Request units: consistent read 1 RRU per 4 KB (≥ 1, also for a miss; a Query sums its items), standard write 1 WRU per KB, transactional write 2 WRU per KB per item; item sizes estimated from the items actually sent and received."
    );
    let _ = writeln!(
        out,
        "- Cold start: a new process and a new Runtime API emulator per run; timed from exec to the first response posted (init + first invocation, including its first connections to moto/Stripe); `init` = exec → first `GET /invocation/next`. Warm: one process, up to {} invocations after {WARM_UP} untimed ones, each timed from the event queued to the response posted (capped at {} s of wall time per function, less when the run nears its {}-s budget). `billing-checkout` runs its sample for an org without a subscription (the seed gave org_sample the module the sample buys).",
        plan.warm_invocations,
        WARM_CAP.as_secs(),
        RUN_BUDGET.as_secs()
    );
    let _ = writeln!(
        out,
        "- Webhook runs send `{}` with a new event id each time; each event's marker and audit trail (its delivery item and the org's index entry) are deleted afterwards, untimed: moto deep-copies the whole table for every item of every transaction (and keeps the copies), so a growing table would slow moto, not the code (DynamoDB does not).",
        setup::WEBHOOK_SAMPLE
    );
    let _ = writeln!(
        out,
        "- Python peer (bench/python_peer): `stripe.Webhook.construct_event` + a conditional put of the marker + a put of the subscription row from the payload, through a minimal urllib runtime loop. It does less than the Rust function (no Stripe re-fetch, no entitlements, no transaction): its ratios flatter Python."
    );
    let _ = writeln!(
        out,
        "- Emulator single calls (median, at the start → at the end of the run): moto GetItem {} → {}, Query {} → {}, 3-item TransactWriteItems {} → {}; fake Stripe GET {} → {}; process spawn (/bin/true) {}. The bench table held {} items ({:.0} KB) at the start and {} items ({:.0} KB) at the end; moto's resident memory was {:.0} MiB → {:.0} MiB (it keeps every table copy its transactions make, so its pauses grow over the run). The in-process webhook end to end ran at the start, the function's warm run later; both are moto-bound.",
        fmt_dur(prim.get_item),
        fmt_dur(prim_end.get_item),
        fmt_dur(prim.query),
        fmt_dur(prim_end.query),
        fmt_dur(prim.transact3),
        fmt_dur(prim_end.transact3),
        fmt_dur(prim.stripe_get),
        fmt_dur(prim_end.stripe_get),
        fmt_dur(prim.process_spawn),
        prim.table_items,
        prim.table_bytes as f64 / 1024.0,
        prim_end.table_items,
        prim_end.table_bytes as f64 / 1024.0,
        mib(prim.moto_rss_kib * 1024),
        mib(prim_end.moto_rss_kib * 1024)
    );

    let _ = writeln!(out, "\nWhat dominates the targets not met:");
    let mut any = false;
    let baseline = functions
        .iter()
        .find(|f| f.name == "billing-services")
        .map(|f| f.cold.init.median());
    for f in &cold_misses {
        any = true;
        let init = f.cold.init.median();
        let total = f.cold.total.median();
        let first = total.saturating_sub(init);
        let (what, why) = if init >= first {
            (
                "init",
                format!(
                    "process start ({} for /bin/true) plus runtime, AWS SDK config and TLS client setup; `billing-services`, which builds no client, inits in {}",
                    fmt_dur(prim.process_spawn),
                    baseline.map(fmt_dur).unwrap_or_default()
                ),
            )
        } else {
            (
                "the first invocation",
                format!(
                    "its DynamoDB calls to moto (GetItem ≈ {}, Query ≈ {}, a 3-item transaction ≈ {}; moto serves HTTP/1.0, so each call also opens a connection) and, for the Stripe callers, its calls to the fake Stripe (GET ≈ {}): Python servers, far slower than DynamoDB and Stripe in-region",
                    fmt_dur(prim.get_item),
                    fmt_dur(prim.query),
                    fmt_dur(prim.transact3),
                    fmt_dur(prim.stripe_get)
                ),
            )
        };
        let _ = writeln!(
            out,
            "- cold start `{}`: median {} = init {} + first invocation {}; {what} dominates: {why}.",
            f.name,
            fmt_dur(total),
            fmt_dur(init),
            fmt_dur(first)
        );
    }
    if !auth.warm.is_empty() && auth.warm.pct(0.99) > AUTH_P99_TARGET {
        any = true;
        let _ = writeln!(
            out,
            "- authorizer p99 {}: the HS256 verify and JSON claim parsing run on every check; the tail is scheduling noise on a 2-core machine shared with the emulators.",
            fmt_dur(auth.warm.pct(0.99))
        );
    }
    if !hook.in_process.is_empty() && hook.in_process.mean() > HOOK_INPROC_TARGET {
        any = true;
        let _ = writeln!(
            out,
            "- webhook in process {:.0} µs/event: parsing the full Stripe event JSON (the samples are pretty-printed, several KB) dominates the HMAC.",
            us(hook.in_process.mean())
        );
    }
    if n_e2e > 0 && hook.end_to_end.median() > HOOK_E2E_TARGET {
        any = true;
        let reads = usage.ops.get("GetItem").copied().unwrap_or(0)
            + usage.ops.get("Query").copied().unwrap_or(0);
        let reads = per_event(reads as f64, n_e2e);
        let tx = per_event(
            usage.ops.get("TransactWriteItems").copied().unwrap_or(0) as f64,
            n_e2e,
        );
        let model = prim.get_item.as_secs_f64() * reads
            + prim.transact3.as_secs_f64() * tx
            + prim.stripe_get.as_secs_f64();
        let total = hook.end_to_end.median().as_secs_f64();
        let own = hook.in_process.mean().as_secs_f64();
        let _ = writeln!(
            out,
            "- webhook end to end {}: moto and the fake Stripe (Python servers) dominate: {reads:.1} reads × {} + {tx:.1} transaction × {} (moto deep-copies the whole table per transaction item) + 1 Stripe GET × {} ≈ {} of it; the Rust code's own verify + parse + decide is {:.0} µs ({:.1}%). Against DynamoDB in-region (single-digit ms per call) the same path is a few ms.",
            fmt_dur(hook.end_to_end.median()),
            fmt_dur(prim.get_item),
            fmt_dur(prim.transact3),
            fmt_dur(prim.stripe_get),
            fmt_dur(Duration::from_secs_f64(model)),
            own * 1e6,
            100.0 * own / total
        );
    }
    for path in trips.paths().into_iter().filter(|p| !p.met()) {
        any = true;
        let _ = writeln!(
            out,
            "- round trips, {}: {}",
            path.path,
            match (path.worst(), path.failures().next()) {
                (_, Some(error)) => format!("a run failed: {error}"),
                (Some(worst), None) => format!("{worst}, above its target ({})", path.target),
                (None, None) => "not measured".to_owned(),
            }
        );
    }
    let dynamo_only = functions
        .iter()
        .find(|f| f.name == "billing-subscription")
        .map_or(0, |f| f.binary_bytes);
    for f in functions
        .iter()
        .filter(|f| mib(f.binary_bytes) > BINARY_TARGET_MIB)
    {
        any = true;
        let _ = writeln!(
            out,
            "- binary `{}` {:.2} MiB: {:.2} MiB more than the DynamoDB-only `billing-subscription` ({:.2} MiB), which links the same shared crate, AWS SDK, runtime and rustls/aws-lc; the difference is the code reachable from the Stripe client (async-stripe's transport and client core with its own HTTP/TLS client setup, and miniserde), which LTO strips only from the functions that never call Stripe.",
            f.name,
            mib(f.binary_bytes),
            mib(f.binary_bytes.saturating_sub(dynamo_only)),
            mib(dynamo_only)
        );
    }
    for f in functions
        .iter()
        .filter(|f| mib(f.warm.peak_rss_kib * 1024) > RSS_TARGET_MIB)
    {
        any = true;
        let _ = writeln!(
            out,
            "- peak RSS `{}` {:.1} MiB: runtime threads' stacks, the SDK and TLS state, and the pages of the binary touched.",
            f.name,
            mib(f.warm.peak_rss_kib * 1024)
        );
    }
    if !any {
        let _ = writeln!(out, "- none: every target is met.");
    }
    let _ = writeln!(
        out,
        "\nRun time after the build: {:.0} s.",
        elapsed.as_secs_f64()
    );
    out
}

fn init_cell(cold: Option<&crate::process::ColdResult>) -> String {
    match cold {
        None => "—".to_owned(),
        Some(c) if c.init.is_empty() => {
            format!("failed: {}", c.first_error.as_deref().unwrap_or("?"))
        }
        Some(c) => format!("{:.1} ms", ms(c.init.median())),
    }
}

/// One row per function, the Python peer last: size, init (secrets in the environment, and read
/// from SSM as deployed), cold start, memory, and the init targets.
fn side_by_side(functions: &[FunctionResult], peer: &FunctionResult) -> String {
    let peer_init = peer.cold.init.median();
    let mut out = String::from(
        "| function | stripped binary | zip | init, median | init with secrets from SSM, median | cold start, median | peak RSS | Python peer init ÷ init | init ≤ 20 ms (SSM too), ≥ 10× the peer |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in functions.iter().chain(std::iter::once(peer)) {
        let is_peer = std::ptr::eq(f, peer);
        let init = f.cold.init.median();
        let times_faster = ms(peer_init) / ms(init).max(f64::MIN_POSITIVE);
        let init_ok = !f.cold.init.is_empty()
            && init <= INIT_TARGET
            && f.cold_ssm
                .as_ref()
                .is_none_or(|c| !c.init.is_empty() && c.init.median() <= INIT_TARGET);
        let _ = writeln!(
            out,
            "| `{}` | {:.2} MiB{} | {:.2} MiB | {} | {} | {:.1} ms | {:.1} MiB | {} | {} |",
            f.name,
            mib(f.binary_bytes),
            if is_peer { " (sources)" } else { "" },
            mib(f.zip_bytes),
            init_cell(Some(&f.cold)),
            init_cell(f.cold_ssm.as_ref()),
            ms(f.cold.total.median()),
            mib(f.warm.peak_rss_kib * 1024),
            if is_peer {
                "1×".to_owned()
            } else {
                format!("{times_faster:.0}×")
            },
            if is_peer {
                String::new()
            } else {
                met(init_ok && times_faster >= INIT_VS_PEER_TARGET)
            },
        );
    }
    out
}

/// `4 (1)`: requests (sequential depth) of one service over a path's runs; `6 (2–3)` when the
/// runs differed.
fn count_cell(spread: Option<(Count, Count)>) -> String {
    let Some((lo, hi)) = spread else {
        return "—".to_owned();
    };
    let range = |a: usize, b: usize| {
        if a == b {
            a.to_string()
        } else {
            format!("{a}–{b}")
        }
    };
    format!(
        "{} ({})",
        range(lo.requests, hi.requests),
        range(lo.sequential, hi.sequential)
    )
}

/// The opening table: the Stripe and DynamoDB requests of each hot path and their sequential
/// depth (the longest chain of requests that did not overlap in time), beside issue 25's
/// figures before the change and its target; then each path's requests in the order they
/// ended.
fn round_trip_table(trips: &RoundTripResults) -> String {
    let mut out = String::from(
        "Round trips per hot path (counted in process by the `billing::round_trips` recorders at the Stripe transport and the DynamoDB client; requests (sequential depth), a range when the runs differed; met when every run is within the target):\n\n| path | Stripe | DynamoDB | all | runs | before (issue 25) | target | status |\n|---|---|---|---|---|---|---|---|\n",
    );
    for path in trips.paths() {
        let ok = path.summaries().count();
        let failed = path.failures().count();
        let runs = match (ok, failed) {
            (0, _) => format!("{failed} failed"),
            (_, 0) if path.steady() => format!("{ok}, all the same"),
            (_, 0) => format!("{ok}, counts varied"),
            _ => format!("{ok} ({failed} failed)"),
        };
        let cells = [
            count_cell(path.spread(|s| s.stripe)),
            count_cell(path.spread(|s| s.dynamo)),
            count_cell(path.spread(|s| s.all)),
        ];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {runs} | {} | {} | {} |",
            path.path,
            cells[0],
            cells[1],
            cells[2],
            path.before,
            path.target,
            met(path.met())
        );
    }
    out.push_str("\nThe requests of each path (its worst run), in the order they ended:\n\n");
    for path in trips.paths() {
        match (path.worst(), path.failures().next()) {
            (Some(worst), _) => {
                let _ = writeln!(
                    out,
                    "- {}: {}.",
                    path.path,
                    worst
                        .operations
                        .iter()
                        .map(|o| format!("`{o}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            (None, Some(error)) => {
                let _ = writeln!(out, "- {}: failed: {error}", path.path);
            }
            (None, None) => {}
        }
    }
    out
}
