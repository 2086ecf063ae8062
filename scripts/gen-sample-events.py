#!/usr/bin/env python3
"""Regenerates the webhook sample events in events/stripe-webhook/ and the Stripe objects they
refer to (tests/fixtures/stripe/sample-objects.json), from Stripe's official example objects in
tests/fixtures/stripe/*.latest.json (current API shape).

Each sample is a Lambda Function URL event (payload 2.0) whose body is a Stripe event signed
with the sample secret below at a fixed time, so replayed as committed it is refused (older than
the 300 s tolerance). `scripts/events` writes ready-to-invoke copies re-signed now with the
secret the function is given (env.local.json by default); the tests re-sign the same way.
"""
import copy
import hashlib
import hmac
import json
import os

ROOT = os.path.join(os.path.dirname(__file__), "..")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "stripe")
OUT = os.path.join(ROOT, "events", "stripe-webhook")
SECRET = "whsec_test_sample_events"
SIGNED_AT = 1764000000
ORG, CUS, SUB, INV, PM, CS = "org_sample", "cus_sample", "sub_sample", "in_sample", "pm_sample", "cs_test_sample"


def load(name):
    with open(os.path.join(FIXTURES, f"{name}.latest.json")) as f:
        return json.load(f)


def objects():
    sub = load("subscription")
    sub.update(id=SUB, customer=CUS, status="active", cancel_at_period_end=False, cancel_at=None,
               canceled_at=None, ended_at=None, trial_end=None, created=1763990000, latest_invoice=INV, pending_update=None,
               metadata={"organization_id": ORG}, livemode=False)
    item = sub["items"]["data"][0]
    item.update(id="si_sample", subscription=SUB, current_period_start=1763990000,
                current_period_end=1766668400, quantity=1)
    item["price"].update(id="price_sample_leadgen_monthly", lookup_key="leadgen_monthly", unit_amount=9900,
                         unit_amount_decimal="9900", currency="usd")
    item["plan"].update(id="price_sample_leadgen_monthly", amount=9900, amount_decimal="9900", currency="usd",
                        interval="month", interval_count=1, billing_scheme="per_unit")
    sub["items"]["url"] = f"/v1/subscription_items?subscription={SUB}"

    inv = load("invoice")
    inv.update(id=INV, customer=CUS, status="paid", number="SAMPLE-0001", amount_due=9900, amount_paid=9900,
               amount_remaining=0, currency="usd", created=1763990000, due_date=None, attempt_count=1,
               hosted_invoice_url="https://invoice.stripe.com/i/sample", livemode=False,
               invoice_pdf="https://pay.stripe.com/invoice/sample/pdf")
    inv["parent"] = {"type": "subscription_details", "quote_details": None,
                     "subscription_details": {"metadata": {"organization_id": ORG}, "subscription": SUB}}
    inv["status_transitions"].update(finalized_at=1763990000, paid_at=1763990100)

    pm = load("payment_method")
    pm.update(id=PM, customer=CUS, type="card", created=1763989000, livemode=False)

    cus = load("customer")
    cus.update(id=CUS, metadata={"organization_id": ORG}, livemode=False, email="billing@example.test",
               name="Sample Org")
    cus["invoice_settings"]["default_payment_method"] = PM

    cs = load("checkout.session")
    cs.update(id=CS, client_reference_id=ORG, customer=CUS, subscription=SUB, mode="subscription",
              status="complete", payment_status="paid", metadata={"organization_id": ORG}, livemode=False,
              url=None, invoice=INV)
    sched = load("subscription_schedule")
    sched.update(id="sub_sched_sample", customer=CUS, subscription=SUB, status="active", livemode=False,
                 canceled_at=None, completed_at=None, released_at=None, released_subscription=None,
                 created=1763990000, end_behavior="release",
                 current_phase={"start_date": 1763990000, "end_date": 1766668400})
    phase = sched["phases"][0]
    phase.update(start_date=1763990000, end_date=1766668400, trial_end=None)
    phase["items"] = [{"price": "price_sample_leadgen_monthly", "quantity": 1, "metadata": {},
                       "discounts": [], "tax_rates": [], "billing_thresholds": None,
                       "plan": "price_sample_leadgen_monthly"}]
    sched["phases"] = [phase]

    return {"subscription": sub, "invoice": inv, "payment_method": pm, "customer": cus, "checkout.session": cs,
            "subscription_schedule": sched}


def function_url_event(body: str, signature: str) -> dict:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json; charset=utf-8",
            "host": "abcdefghij.lambda-url.us-east-1.on.aws",
            "stripe-signature": signature,
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghij",
            "domainName": "abcdefghij.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghij",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "3.18.12.63",
                     "userAgent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"},
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default",
            "stage": "$default",
            "time": "24/Nov/2025:16:00:00 +0000",
            "timeEpoch": SIGNED_AT * 1000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


EVENTS = [
    ("checkout.session.completed", "checkout.session", None),
    ("customer.subscription.created", "subscription", None),
    ("customer.subscription.updated", "subscription", {"cancel_at_period_end": True}),
    ("invoice.finalized", "invoice", None),
    ("invoice.updated", "invoice", {"status": "open"}),
    ("invoice.paid", "invoice", None),
    ("invoice.payment_succeeded", "invoice", None),
    ("invoice.payment_failed", "invoice", None),
    ("payment_method.attached", "payment_method", None),
    ("payment_method.detached", "payment_method", {"customer": CUS}),
    ("customer.updated", "customer", {"invoice_settings": {"default_payment_method": None}}),
    ("customer.subscription.deleted", "subscription", None),
    ("product.created", None, None),
    # Appended so that the earlier samples keep their ids and bytes.
    ("checkout.session.async_payment_succeeded", "checkout.session", None),
    ("customer.subscription.paused", "subscription", {"status": "active"}),
    ("customer.subscription.resumed", "subscription", {"status": "paused"}),
    ("customer.subscription.trial_will_end", "subscription", None),
    ("invoice.voided", "invoice", {"status": "open"}),
    ("invoice.marked_uncollectible", "invoice", {"status": "open"}),
    ("payment_method.updated", "payment_method", {"card": {"exp_month": 8, "exp_year": 2026}}),
    ("invoice.payment_action_required", "invoice", None),
    ("payment_method.automatically_updated", "payment_method", {"card": {"exp_month": 8, "exp_year": 2026}}),
    ("customer.deleted", "customer", None),
    # A change made with payment_behavior=pending_if_incomplete was paid, or lapsed unpaid.
    ("customer.subscription.pending_update_applied", "subscription", None),
    ("customer.subscription.pending_update_expired", "subscription", None),
    # A Checkout Session left unpaid until it expired (counted for the checkout success rate).
    ("checkout.session.expired", "checkout.session", None),
    # A module removed at period end lives on a subscription schedule: each change re-reads the
    # subscription it manages (after a release: `released_subscription`).
    ("subscription_schedule.created", "subscription_schedule", None),
    ("subscription_schedule.updated", "subscription_schedule", {"phases": []}),
    ("subscription_schedule.released", "subscription_schedule", {"status": "active"}),
    ("subscription_schedule.canceled", "subscription_schedule", {"status": "active"}),
    ("subscription_schedule.completed", "subscription_schedule", {"status": "active"}),
    ("subscription_schedule.aborted", "subscription_schedule", {"status": "active"}),
]


def rest_event(method, resource, body=None, query=None, role="Owner", org=ORG, authorized=True, path_parameters=None):
    """An API Gateway REST proxy event as it reaches a function behind the authorizer.
    `path_parameters` fill the resource template's `{name}` segments in the concrete path."""
    path = resource
    for name, value in (path_parameters or {}).items():
        path = path.replace("{" + name + "}", value)
    authorizer = {"principalId": "user_sample", "orgId": org, "userId": "user_sample", "role": role,
                  "entitlements": "BasicCRM,LeadGeneration", "integrationLatency": 3} if authorized else None
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Accept": "application/json", "Content-Type": "application/json",
                    "Host": "abc123.execute-api.us-east-1.amazonaws.com",
                    "Origin": "https://app.example.test"},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "resourceId": "res123", "stage": "prod",
            "requestId": "9b6a6c4e-sample", "httpMethod": method, "path": f"/prod{path}",
            "resourcePath": resource, "protocol": "HTTP/1.1", "requestTimeEpoch": SIGNED_AT * 1000,
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "Mozilla/5.0"},
            **({"authorizer": authorizer} if authorizer else {}),
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


API_EVENTS = {
    "billing-services": [
        ("200-anonymous", rest_event("GET", "/api/billing/services", authorized=False)),
        ("200-known-caller", rest_event("GET", "/api/billing/services")),
        ("200-openapi", rest_event("GET", "/api/billing/openapi.json", authorized=False)),
    ],
    "billing-subscription": [
        ("200-subscription", rest_event("GET", "/api/billing/subscription", role="Member")),
        ("401-no-authorizer-context", rest_event("GET", "/api/billing/subscription", authorized=False)),
    ],
    "billing-invoices": [
        ("200-first-page", rest_event("GET", "/api/billing/invoices", query={"limit": "20"})),
        ("400-bad-limit", rest_event("GET", "/api/billing/invoices", query={"limit": "1000"})),
    ],
    "billing-payment-methods": [
        ("200-payment-methods", rest_event("GET", "/api/billing/payment-methods")),
    ],
    "billing-checkout": [
        # The sample org already pays for LeadGeneration monthly in the sample Stripe objects,
        # so a monthly purchase joins that plan (billing-plan); a yearly one is a checkout.
        ("200-checkout", rest_event("POST", "/api/billing/checkout", {
            "services": ["EmailAutomation", "SocialInbox"], "interval": "year",
            "successUrl": "https://app.example.test/billing/success", "cancelUrl": "https://app.example.test/billing"})),
        ("403-member", rest_event("POST", "/api/billing/checkout", {
            "services": ["LeadGeneration"], "interval": "month",
            "successUrl": "https://app.example.test/billing/success", "cancelUrl": "https://app.example.test/billing"},
            role="Member")),
        ("422-unknown-service", rest_event("POST", "/api/billing/checkout", {
            "services": ["Teleport"], "interval": "month",
            "successUrl": "https://app.example.test/billing/success", "cancelUrl": "https://app.example.test/billing"})),
        ("422-open-redirect", rest_event("POST", "/api/billing/checkout", {
            "services": ["SocialInbox"], "interval": "year",
            "successUrl": "https://evil.example/phish", "cancelUrl": "https://app.example.test/billing"})),
    ],
    "billing-portal": [
        ("200-portal", rest_event("POST", "/api/billing/portal", {"returnUrl": "https://app.example.test/settings/billing"})),
        ("409-no-billing-account", rest_event("POST", "/api/billing/portal", {"returnUrl": "https://app.example.test/settings"}, org="org_without_customer")),
    ],
    "billing-plan": [
        # No yearly plan yet: the preview is Checkout's first invoice (no time-dependent
        # proration, so the committed answer stays the same).
        ("200-preview", rest_event("POST", "/api/billing/preview", {
            "services": ["EmailAutomation"], "interval": "year"})),
        ("403-member", rest_event("POST", "/api/billing/preview", {
            "services": ["EmailAutomation"], "interval": "month"}, role="Member")),
        ("409-no-yearly-plan", rest_event("POST", "/api/billing/modules", {
            "services": ["EmailAutomation"], "interval": "year", "prorationDate": 1764000000})),
        ("400-no-proration-date", rest_event("POST", "/api/billing/modules", {
            "services": ["EmailAutomation"], "interval": "month"})),
        ("422-unknown-service", rest_event("POST", "/api/billing/modules", {
            "services": ["Teleport"], "interval": "month", "prorationDate": 1764000000})),
        # Remove at period end, undo, and the interval switch (the sample org holds no
        # SocialInbox and has no yearly plan).
        ("404-remove-not-subscribed", rest_event("DELETE", "/api/billing/modules/{service}",
            path_parameters={"service": "SocialInbox"})),
        ("404-resume-not-subscribed", rest_event("POST", "/api/billing/modules/{service}/resume",
            path_parameters={"service": "SocialInbox"})),
        ("403-remove-member", rest_event("DELETE", "/api/billing/modules/{service}",
            path_parameters={"service": "LeadGeneration"}, role="Member")),
        ("409-interval-already-monthly", rest_event("POST", "/api/billing/interval/preview", {
            "interval": "month"})),
        ("422-interval-unknown", rest_event("POST", "/api/billing/interval", {
            "interval": "weekly", "prorationDate": 1764000000})),
    ],
    "billing-sync": [
        ("200-sync-after-checkout", rest_event("POST", "/api/billing/sync", query={"session_id": CS}, role="Member")),
    ],
}


def main():
    for function, events in API_EVENTS.items():
        folder = os.path.join(ROOT, "events", function)
        os.makedirs(folder, exist_ok=True)
        for name, event in events:
            with open(os.path.join(folder, f"{name}.json"), "w") as f:
                json.dump(event, f, indent=2)
                f.write("\n")
    objs = objects()
    os.makedirs(OUT, exist_ok=True)
    template = load("event")
    for n, (kind, obj_name, previous) in enumerate(EVENTS, start=1):
        event = copy.deepcopy(template)
        if obj_name is None:
            obj = load("product")
            obj.update(id="prod_sample", livemode=False)
        else:
            obj = copy.deepcopy(objs[obj_name])
        if kind == "customer.subscription.deleted":
            obj.update(status="canceled", canceled_at=1764000000, ended_at=1764000000)
        if kind == "payment_method.detached":
            obj["customer"] = None
        if kind in ("invoice.payment_failed", "invoice.payment_action_required"):
            obj.update(status="open", amount_paid=0, amount_remaining=9900, attempt_count=1)
            obj["status_transitions"]["paid_at"] = None
        if kind == "invoice.voided":
            obj.update(status="void", amount_paid=0, amount_remaining=0)
            obj["status_transitions"].update(paid_at=None, voided_at=SIGNED_AT - 30)
        if kind == "invoice.marked_uncollectible":
            obj.update(status="uncollectible", amount_paid=0, amount_remaining=9900)
            obj["status_transitions"].update(paid_at=None, marked_uncollectible_at=SIGNED_AT - 30)
        if kind == "customer.subscription.paused":
            obj.update(status="paused")
        if kind == "subscription_schedule.released":
            obj.update(status="released", subscription=None, released_subscription=SUB, released_at=SIGNED_AT - 30)
        if kind == "subscription_schedule.canceled":
            obj.update(status="canceled", canceled_at=SIGNED_AT - 30)
        if kind == "subscription_schedule.completed":
            obj.update(status="completed", completed_at=SIGNED_AT - 30)
        if kind == "customer.subscription.trial_will_end":
            obj.update(status="trialing", trial_start=1763990000, trial_end=SIGNED_AT + 3 * 86400)
        if kind in ("payment_method.updated", "payment_method.automatically_updated"):
            obj["card"].update(exp_month=8, exp_year=2030)
        event.update(id=f"evt_sample_{n:02d}", type=kind, created=SIGNED_AT - 60 + n, livemode=False,
                     api_version="2026-09-30.endive", pending_webhooks=1)
        event["data"] = {"object": obj}
        if previous is not None:
            event["data"]["previous_attributes"] = previous
        body = json.dumps(event, indent=2, sort_keys=True)
        mac = hmac.new(SECRET.encode(), f"{SIGNED_AT}.{body}".encode(), hashlib.sha256).hexdigest()
        with open(os.path.join(OUT, f"{kind}.json"), "w") as f:
            json.dump(function_url_event(body, f"t={SIGNED_AT},v1={mac}"), f, indent=2)
            f.write("\n")
    with open(os.path.join(FIXTURES, "sample-objects.json"), "w") as f:
        json.dump(objs, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
