"""A small stateful Stripe API for what localstripe lacks (prices, Checkout and billing-portal
sessions, current-shape objects). It answers with Stripe's official example objects
(tests/fixtures/stripe/*.latest.json) overlaid with the fields a request sets, and records every
request (form parameters, idempotency key, API version) so tests can assert the exact call.

Where the code under test depends on it, it behaves as Stripe documents (each behaviour has a
test of its own in tests/tests/fake_stripe.rs):
  * idempotency keys: a request whose key is still in flight gets 409 `idempotency_key_in_use`;
    a key reused with other parameters or another endpoint gets 400 `idempotency_error`; a key
    reused with the same ones replays the first answer.
  * lists: `limit` (default 10, at most 100), `starting_after`, `has_more`; subscriptions leave
    out canceled ones unless `status` says otherwise; checkout sessions filter by `customer`
    and `status`.
  * creates check their required parameters (400 `parameter_missing`).
  * every API request is checked against the parameters Stripe documents for its endpoint
    (stripe_params.py): an unknown one answers 400 `parameter_unknown` naming it, a wrong type
    or enum value 400 `parameter_invalid_*` (or, for booleans and enums, Stripe's
    `invalid_request_error` with `param` and no code); an endpoint Stripe does not have, 404.
  * Checkout Sessions can be expired (`POST /v1/checkout/sessions/{id}/expire`, open ones only;
    also when the test clock passes `expires_at`, 24 h after creation: `checkout.session.expired`
    is stored and delivered) and completed (a test control, standing in for the customer paying).
  * Checkout's B2B parameters (stripe_params.py) and Stripe's refusals of combinations:
    `customer_update` without `customer`; `tax_id_collection[enabled]` for an existing customer
    without `customer_update[name]=auto`; `automatic_tax[enabled]` for an existing customer with
    no address unless `customer_update[address|shipping]=auto`; `allow_promotion_codes` with
    `discounts`; `payment_method_collection` or `subscription_data` outside subscription mode;
    `subscription_data[trial_period_days]` outside 1..730. The completed session carries
    `customer_details` (name, business_name, email, address, tax_ids), `amount_subtotal`,
    `amount_total`, `total_details` (amount_discount, amount_tax), `discounts`
    ({coupon, promotion_code}), `payment_status` (`no_payment_required` for a trial); the customer
    gets `name`/`address` where `customer_update` says `auto`, and the tax ID (retrieve it with
    `expand[]=tax_ids`). Tax, discounts and trials: fake_billing.py.
  * prices keep `tax_behavior` (`unspecified` by default); once `inclusive` or `exclusive` it
    cannot change (400, param `tax_behavior`; Stripe's reference: "Once specified as either
    inclusive or exclusive, it cannot be changed"); products keep `tax_code`;
    `POST /v1/customers/{id}` updates name, email, address, metadata, tax_exempt.
  * a deleted customer is still retrievable, as `{"id": ..., "deleted": true}`.
  * events (stored with the `/_test/objects` control) are retrievable (`GET /v1/events/{id}`)
    and listed with `delivery_success` (false: `pending_webhooks` > 0), `type` and
    `created[gt|gte|lt|lte]` filters; any list filters on `created[...]` the same way.

  * subscriptions, their items and invoices (fake_billing.py, tested by
    tests/emulators/test_fake_stripe_billing.py): several items per subscription (one currency,
    one interval, one item per price), `POST /v1/subscriptions[/{id}]`, `/v1/subscription_items`,
    prorations to the second under `proration_behavior` and `proration_date`, the four
    `payment_behavior`s with pending updates, `POST /v1/invoices/create_preview`,
    `POST /v1/invoices/{id}/pay`; test payment methods `pm_card_visa` (any id pays),
    `pm_card_chargeCustomerFail` (every charge declined), `pm_card_authenticationRequired`
    (3-D Secure on every charge).
  * subscription schedules (fake_billing.py, tested by tests/emulators/test_fake_stripe_plan.py):
    `POST /v1/subscription_schedules` with `from_subscription` alone (one phase: the current
    period, its items, `trial_end` while trialing; `end_behavior=release`; the subscription's
    `schedule` set; a subscription set to cancel at period end gets `end_behavior=cancel`;
    refused: other parameters with it, a subscription already on a schedule, a canceled one),
    `GET|POST /v1/subscription_schedules/{id}` (phases from the current one on: the current
    phase's start unchanged, contiguous phases, `duration` or `end_date`, at least one item, one
    interval per phase, ended phases unchanged), `/release`, `/cancel`, the list; the clock
    starts the next phase at the period end (its items become the subscription's) and releases
    the schedule at the end of the last phase (`cancel`: completes it, cancels the subscription);
    `cancel_at_period_end`/`cancel_at` on a scheduled subscription: 400; `expand[]=schedule` on a
    subscription, `expand[]=data.schedule|data.latest_invoice` on the subscriptions list. Events
    `subscription_schedule.created|updated|released|completed|canceled`.
  * billing-portal configurations (portal_config.py): `POST|GET /v1/billing_portal/configurations`,
    `GET|POST /v1/billing_portal/configurations/{id}` (`is_default` false for API-made ones);
    a portal session needs `configuration` (active) or the account's default one, which a fresh
    account lacks (400, Stripe's message) until a test seeds it (`POST /_test/portal/default` or
    `/_test/objects`); `flow_data` sets the session's `flow`; the local portal page offers what
    the configuration enables (local_hosted.py).
  * events of what it does (`customer.subscription.*`, `invoice.*`, `checkout.session.completed`)
    are stored as event objects (`GET /v1/events`) with `pending_webhooks` = the local webhooks
    not reached yet (none registered: 0, delivered), and delivered signed to the webhooks
    registered with `POST /_local/webhooks`, in order, one at a time.

With --upstream URL (the local stack) it owns what localstripe lacks or gets wrong (Checkout and
billing-portal sessions, prices, products, subscriptions, subscription items, invoices, events)
and forwards every other call (customers, payment methods) to that URL. A subscription or invoice
that localstripe made itself (a test subscribing there directly) is still read, changed and listed
there: an id the fake does not hold is forwarded, and lists join localstripe's to the fake's.

Control endpoints (tests only):
  POST   /_test/objects          JSON object with "id": store or replace it (e.g. a promotion code:
                                 {"id": "promo_1", "object": "promotion_code", "code": "TWENTY",
                                 "active": true, "coupon": {"id": "c_1", "object": "coupon",
                                 "percent_off": 20 | "amount_off": 500, "duration": "once" |
                                 "forever" | "repeating", "duration_in_months": 3}})
  DELETE /_test/objects/<id>     forget one object
  GET    /_test/requests         every API request received so far
  POST   /_test/fail             {"status": 503, "count": 2}: the next N API calls fail
  POST   /_test/latency          {"path": "/v1/customers", "ms": 300}: POSTs there take that long
  POST   /_test/hold             {"path": "/v1/subscriptions/sub_1"}: the next GET of that path
                                 reads the object at once but answers only when released;
                                 with "object", it answers that (older) object instead, as a
                                 replica behind or a clock ahead would
  GET    /_test/held             paths whose GET is read and waiting to be released
  POST   /_test/release          {"path": ...}: let a held GET answer (with what it read)
  POST   /_test/checkout/<id>/complete  {"subscription": "sub_..."}: the customer paid (the
                                 session only names that subscription), or, without
                                 "subscription", the buyer completes it as on the local page:
                                 {"business_name": "Acme GmbH", "email": "...", "address":
                                 {"country": "DE", "line1": "...", "city": "...", "postal_code":
                                 "..."}, "vat_id": "DE123456789" (or "tax_id": {"type": "eu_vat",
                                 "value": ...}), "promotion_code": "TWENTY", "payment_method":
                                 "pm_card_visa"} (all optional; the session's requirements are
                                 checked; the payment method defaults to pm_card_visa unless
                                 `payment_method_collection=if_required` and nothing is due):
                                 the subscription is created (trial, tax, discount), answers the
                                 completed session
  POST   /_test/checkout/<id>/expire    the session's expires_at passed: expired, event sent
  GET    /_test/clock            {"now": ..., "offset": seconds ahead of the wall clock}
  POST   /_test/clock            {"advance_seconds": N} or {"to": unix time}: moves the fixture's
                                 clock forward (a test clock for the whole fixture), doing in
                                 time order what falls due: trial_will_end (3 days before a trial
                                 ends), trial ends, renewals at the period end (a schedule's next
                                 phase first), cancel-at-period-end endings, Checkout Sessions
                                 expiring; answers "now" and
                                 "happened" [{"at", "what", "id"}]
  GET    /_test/events           every event stored so far, oldest first (to deliver them in a test)
  POST   /_test/invoices/<id>/authenticate  the buyer completed 3-D Secure: the open invoice is paid
                                 (and a pending update it carries applied)
  POST   /_test/payment_methods  {"id": "pm_...", "behaviour": "ok"|"decline"|"authenticate"}:
                                 how later charges to that payment method go
  POST   /_test/portal/default   the account's default portal configuration (as saving the portal
                                 settings in the Dashboard makes it: invoice history, card update,
                                 email and address updates, cancel at period end), answers it; or
                                 store your own with /_test/objects: {"id": "bpc_...", "object":
                                 "billing_portal.configuration", "is_default": true, "active": true,
                                 "features": {...}} (the shape of portal_config.EXAMPLE)
  POST   /_test/account          {"id": "acct_..."}: the account the key belongs to from now on
                                 (another than acct_1LocalPssFixture: every object answers 404)
  POST   /_test/reset            forget everything (objects, events, prorations pending, payment-
                                 method behaviours set by tests, the clock's advance; registered
                                 webhooks stay)
"""
import argparse
import copy
import itertools
import json
import os
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import fake_billing  # subscriptions with several items, invoices, prorations, previews
import local_hosted  # the local stack's Checkout, portal and invoice pages
import portal_config  # billing-portal configurations, and what a portal session may ask for
import stripe_params  # the parameters Stripe accepts on each endpoint the code calls

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "stripe")
LOCK = threading.Lock()
OBJECTS: dict = {}
REQUESTS: list = []
# idempotency key -> (method, path, form, status, body); IN_FLIGHT holds keys being processed.
IDEMPOTENT: dict = {}
IN_FLIGHT: set = set()
LATENCY: dict = {}
FAIL = {"status": 0, "count": 0}
# path -> {"armed": bool, "event": threading.Event, "held": bool}
HOLDS: dict = {}
COUNTER = itertools.count(1)
UPSTREAM = {"url": None}
OWNED_PREFIXES = ("/v1/checkout/", "/v1/billing_portal/", "/v1/prices", "/v1/products", "/v1/account",
                  "/v1/subscriptions", "/v1/subscription_items", "/v1/subscription_schedules", "/v1/invoices",
                  "/v1/events")
# Owned, but a subscription or invoice that localstripe made itself (a test subscribing there
# directly) is still read, changed and listed there.
SHARED_COLLECTIONS = ("/v1/subscriptions", "/v1/invoices")
EVENTS = queue.Queue()
# The account whose objects this server holds, and the account the caller's key belongs to
# (`POST /_test/account` changes the latter). With a key of another account, Stripe answers
# `GET /v1/account` with that account and every object of this one with 404 resource_missing.
HOME_ACCOUNT = "acct_1LocalPssFixture"
KEY_ACCOUNT = {"id": HOME_ACCOUNT}


def fixture(name: str) -> dict:
    with open(os.path.join(FIXTURES, f"{name}.latest.json")) as f:
        return json.load(f)


def new_id(prefix: str) -> str:
    return f"{prefix}_fake{next(COUNTER):06d}{int(time.time() * 1000) % 100000:05d}"


def nested(form: dict) -> dict:
    """Turns `a[b][0]=x` keys into nested dicts (lists stay dicts keyed by index)."""
    out: dict = {}
    for key, value in form.items():
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def numbered(pairs: list) -> dict:
    """A form as a dict, repeated `a[]` values numbered `a[0]`, `a[1]` (Stripe reads both)."""
    out, counts = {}, {}
    for key, value in pairs:
        if key.endswith("[]") and not key.startswith("expand"):
            n = counts.get(key, 0)
            counts[key] = n + 1
            key = f"{key[:-2]}[{n}]"
        out[key] = value
    return out


def error(status: int, message: str, code: str = "resource_missing", kind: str = "invalid_request_error"):
    body = {"error": {"type": kind, "message": message}}
    if code:
        body["error"]["code"] = code
    return status, body


def missing(param: str):
    return error(400, f"Missing required param: {param}.", "parameter_missing")


COLLECTIONS = {
    "subscriptions": "subscription",
    "invoices": "invoice",
    "customers": "customer",
    "payment_methods": "payment_method",
    "checkout/sessions": "checkout.session",
    "prices": "price",
    "products": "product",
    "events": "event",
    "subscription_schedules": "subscription_schedule",
    "billing_portal/configurations": "billing_portal.configuration",
}


def emit(kind: str, obj: dict, previous=None) -> dict:
    """Stores an event as Stripe sends it (`GET /v1/events` lists it) and queues its signed
    delivery to the registered local webhooks. `pending_webhooks` counts the endpoints that have
    not received it yet, so with none registered it counts as delivered."""
    event = fixture("event")
    event.update(id=new_id("evt"), type=kind, created=int(time.time()), livemode=False,
                 api_version=local_hosted.API_VERSION,
                 pending_webhooks=len(local_hosted.STATE["webhooks"]),
                 request={"id": None, "idempotency_key": None},
                 data={"object": copy.deepcopy(obj)})
    if previous is not None:
        event["data"]["previous_attributes"] = copy.deepcopy(previous)
    OBJECTS[event["id"]] = event
    if event["pending_webhooks"]:
        EVENTS.put(event["id"])
    return event


def deliver_events() -> None:
    """One delivery at a time, in the order the events happened, as Stripe mostly does."""
    while True:
        eid = EVENTS.get()
        with LOCK:
            event = copy.deepcopy(OBJECTS.get(eid))
        if event is None:
            continue
        delivered = local_hosted.deliver(event)
        with LOCK:
            stored = OBJECTS.get(eid)
            if stored is not None:
                stored["pending_webhooks"] = max(0, (stored.get("pending_webhooks") or 0) - delivered)


def upstream_customer(customer_id):
    """A customer of the local stack (localstripe keeps customers there), None if it has none."""
    if not customer_id:
        return None
    held = OBJECTS.get(customer_id)
    if held is not None and held.get("object") == "customer":
        return None if held.get("deleted") else held
    try:
        found = local_hosted.upstream("GET", f"/v1/customers/{customer_id}")
    except RuntimeError:
        return None
    return None if found.get("deleted") else found


def create(path: str, form: dict):
    params = nested(form)
    now = fake_billing.now()
    if path == "/v1/customers":
        obj = fixture("customer")
        obj.update(id=new_id("cus"), created=now, email=params.get("email"), name=params.get("name"),
                   description=params.get("description"), metadata=params.get("metadata", {}), livemode=False,
                   tax_exempt=params.get("tax_exempt") or "none", discount=None, phone=params.get("phone"))
        if isinstance(params.get("address"), dict):
            obj["address"] = {k: params["address"].get(k) for k in ("city", "country", "line1", "line2",
                                                                     "postal_code", "state")}
        obj["invoice_settings"]["default_payment_method"] = None
        for data in fake_billing.indexed(params.get("tax_id_data")):
            fake_billing.TAX_IDS.setdefault(obj["id"], []).append({
                "id": new_id("txi"), "object": "tax_id", "customer": obj["id"], "type": data.get("type"),
                "value": data.get("value"), "created": now, "livemode": False})
    elif path == "/v1/checkout/sessions":
        for required in ("mode", "success_url"):
            if not params.get(required):
                return missing(required)
        if params["mode"] in ("subscription", "payment") and not params.get("line_items"):
            return missing("line_items")
        customer = params.get("customer")
        known = OBJECTS.get(customer) if customer else None
        if customer and not UPSTREAM["url"] and (known is None or known.get("deleted")):
            return error(400, f"No such customer: '{customer}'", "resource_missing")
        refused = checkout_constraints(params, known if known is not None or not UPSTREAM["url"]
                                       else upstream_customer(customer))
        if refused is not None:
            return refused
        obj = fixture("checkout.session")
        sid = new_id("cs_test")
        tax_on = (params.get("automatic_tax") or {}).get("enabled") == "true"
        ids = params.get("tax_id_collection") or {}
        amount = 0
        for entry in fake_billing.indexed(params.get("line_items")):
            price = OBJECTS.get(entry.get("price")) or {}
            amount += int(price.get("unit_amount") or 0) * int(entry.get("quantity") or 1)
        obj.update(
            allow_promotion_codes=params.get("allow_promotion_codes") == "true" if "allow_promotion_codes" in params else None,
            automatic_tax={"enabled": tax_on, "liability": {"type": "self"} if tax_on else None,
                           "provider": "stripe" if tax_on else None, "status": "requires_location_inputs" if tax_on else None},
            billing_address_collection=params.get("billing_address_collection"),
            tax_id_collection={"enabled": ids.get("enabled") == "true", "required": ids.get("required") or "never"},
            payment_method_collection=params.get("payment_method_collection") or ("always" if params.get("mode") == "subscription" else None),
            customer_details=None, discounts=[], invoice=None, payment_intent=None, currency=None,
            amount_subtotal=amount, amount_total=amount,
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            collected_information=None, customer_email=params.get("customer_email"))
        obj.update(id=sid, created=now, expires_at=int(params.get("expires_at") or now + 86400), mode=params.get("mode"),
                   customer=customer, client_reference_id=params.get("client_reference_id"),
                   metadata=params.get("metadata", {}), success_url=params.get("success_url"),
                   cancel_url=params.get("cancel_url"), status="open", payment_status="unpaid",
                   subscription=None, url=f"https://checkout.stripe.test/c/pay/{sid}", livemode=False)
        local_hosted.on_checkout_session(obj, params)
    elif path == "/v1/billing_portal/configurations":
        return portal_config.create(params, now, new_id, OBJECTS)
    elif path == "/v1/billing_portal/sessions":
        if not params.get("customer"):
            return missing("customer")
        config, problem = portal_config.session_configuration(params, OBJECTS)
        if problem:
            return problem
        flow, problem = portal_config.session_flow(params, config, OBJECTS)
        if problem:
            return problem
        obj = fixture("billing_portal.session")
        sid = new_id("bps")
        obj.update(id=sid, created=now, customer=params.get("customer"),
                   return_url=params.get("return_url") or config.get("default_return_url"),
                   configuration=config["id"], flow=flow, locale=params.get("locale"),
                   on_behalf_of=params.get("on_behalf_of"), customer_account=None,
                   url=f"https://billing.stripe.test/p/session/{sid}", livemode=False)
        local_hosted.on_portal_session(obj)
    elif path == "/v1/products":
        if not params.get("name"):
            return missing("name")
        obj = fixture("product")
        obj.update(id=params.get("id") or new_id("prod"), created=now, name=params.get("name"),
                   description=params.get("description"), metadata=params.get("metadata", {}),
                   active=True, livemode=False, tax_code=params.get("tax_code") or None)
    elif path == "/v1/prices":
        for required in ("currency", "product"):
            if not params.get(required):
                return missing(required)
        obj = fixture("price")
        key = params.get("lookup_key")
        if key and params.get("transfer_lookup_key") == "true":
            for other in OBJECTS.values():
                if other.get("object") == "price" and other.get("lookup_key") == key:
                    other["lookup_key"] = None
        elif key and any(o.get("object") == "price" and o.get("lookup_key") == key for o in OBJECTS.values()):
            return error(400, f"A price with lookup_key {key} already exists.", "lookup_key_exists")
        recurring = params.get("recurring", {})
        obj.update(id=new_id("price"), created=now, currency=params.get("currency"),
                   unit_amount=int(params.get("unit_amount", 0)), unit_amount_decimal=params.get("unit_amount"),
                   lookup_key=key, product=params.get("product"), metadata=params.get("metadata", {}),
                   active=True, livemode=False, type="recurring",
                   tax_behavior=params.get("tax_behavior") or "unspecified",
                   recurring={"interval": recurring.get("interval"), "interval_count": 1, "meter": None,
                              "trial_period_days": None, "usage_type": "licensed"})
    else:
        return None
    OBJECTS[obj["id"]] = obj
    return 200, obj


def expire_session(sid: str):
    obj = OBJECTS.get(sid)
    if obj is None or obj.get("object") != "checkout.session":
        return error(404, f"No such checkout.session: '{sid}'")
    if obj.get("status") != "open":
        return error(400, 'Only Checkout Sessions with a status in ["open"] can be expired.', None)
    obj.update(status="expired", url=None)
    emit("checkout.session.expired", obj)
    return 200, obj


def session_timers():
    """Open Checkout Sessions expire at `expires_at` as the clock passes it."""
    return [(o["expires_at"], o["id"], (lambda sid=o["id"]: expire_session(sid)))
            for o in list(OBJECTS.values())
            if o.get("object") == "checkout.session" and o.get("status") == "open" and o.get("expires_at")]


def checkout_constraints(params: dict, customer):
    """Stripe's refusals of Checkout parameter combinations (docs.stripe.com/api/checkout/sessions/create)."""
    update = params.get("customer_update") or {}
    if "customer_update" in params and not params.get("customer"):
        return param_error("customer_update", "`customer_update` can only be used with `customer`.")
    if "allow_promotion_codes" in params and "discounts" in params:
        return param_error("allow_promotion_codes",
                           "You may only specify one of these parameters: allow_promotion_codes, discounts.")
    if "payment_method_collection" in params and params.get("mode") != "subscription":
        return param_error("payment_method_collection",
                           "`payment_method_collection` can only be used in `subscription` mode.")
    data = params.get("subscription_data") or {}
    if data and params.get("mode") != "subscription":
        return param_error("subscription_data", "`subscription_data` can only be used in `subscription` mode.")
    if data.get("trial_period_days") not in (None, ""):
        days = int(data["trial_period_days"])
        if not 1 <= days <= 730:
            return param_error("subscription_data[trial_period_days]",
                               "The number of trial period days must be between 1 and 730.")
        if data.get("trial_end") not in (None, ""):
            return param_error("subscription_data[trial_end]", "You may only specify one of these parameters: "
                               "subscription_data[trial_end], subscription_data[trial_period_days].")
    if (params.get("tax_id_collection") or {}).get("enabled") == "true" and params.get("customer") \
            and update.get("name") != "auto":
        return param_error("tax_id_collection[enabled]",
                           "Tax ID collection requires updating business name on the customer. To enable tax ID "
                           "collection for an existing customer, please set `customer_update[name]` to `auto`.")
    if (params.get("automatic_tax") or {}).get("enabled") == "true" and params.get("customer") \
            and "auto" not in (update.get("address"), update.get("shipping")) \
            and not (((customer or {}).get("address") or {}).get("country")):
        return param_error("automatic_tax[enabled]",
                           "Automatic tax calculation in Checkout requires a valid address on the Customer. Add "
                           "a valid address to the Customer or set either `customer_update[address]` to 'auto' or "
                           "`customer_update[shipping]` to 'auto' to save the address entered in Checkout to the "
                           "Customer.")
    return None


def param_error(param: str, message: str):
    return 400, {"error": {"type": "invalid_request_error", "message": message, "param": param}}


def update(path: str, form: dict):
    params = nested(form)
    if path.startswith("/v1/billing_portal/configurations/") and path.count("/") == 4:
        return portal_config.update(path.rsplit("/", 1)[1], params, fake_billing.now(), OBJECTS)
    if path.startswith("/v1/customers/") and path.count("/") == 3:
        return update_customer(path, params)
    if path.startswith("/v1/checkout/sessions/") and path.endswith("/expire"):
        return expire_session(path[len("/v1/checkout/sessions/"):-len("/expire")])
    for collection in ("prices", "products"):
        prefix = f"/v1/{collection}/"
        if path.startswith(prefix):
            obj = OBJECTS.get(path[len(prefix):])
            if obj is None:
                return error(404, "No such object")
            if "active" in params:
                obj["active"] = params["active"] == "true"
            if collection == "prices" and params.get("tax_behavior"):
                held = obj.get("tax_behavior") or "unspecified"
                if held in ("inclusive", "exclusive") and params["tax_behavior"] != held:
                    return param_error("tax_behavior", "The tax_behavior of a price cannot be changed once it is "
                                       f"set to inclusive or exclusive (this price is {held}). Create a new price "
                                       "instead.")
                obj["tax_behavior"] = params["tax_behavior"]
            if collection == "products" and "tax_code" in params:
                obj["tax_code"] = params["tax_code"] or None
            for field in ("name", "description", "lookup_key"):
                if field in params:
                    obj[field] = params[field] or None
            if "metadata" in params:
                obj.setdefault("metadata", {}).update(params["metadata"])
            return 200, obj
    return None


def update_customer(path: str, params: dict):
    cid = path[len("/v1/customers/"):]
    obj = OBJECTS.get(cid)
    if obj is None or obj.get("object") != "customer" or obj.get("deleted"):
        return error(404, f"No such customer: '{cid}'")
    before = copy.deepcopy(obj)
    for field in ("name", "email", "description", "phone", "tax_exempt"):
        if field in params:
            obj[field] = params[field] or None
    if "address" in params:
        obj["address"] = ({k: params["address"].get(k) for k in ("city", "country", "line1", "line2", "postal_code",
                                                                 "state")} if isinstance(params["address"], dict) else None)
    if "metadata" in params and isinstance(params["metadata"], dict):
        obj.setdefault("metadata", {}).update(params["metadata"])
        obj["metadata"] = {k: v for k, v in obj["metadata"].items() if v != ""}
    pm = (params.get("invoice_settings") or {}).get("default_payment_method") if isinstance(params.get("invoice_settings"), dict) else None
    if pm is not None:
        obj["invoice_settings"]["default_payment_method"] = pm or None
    emit("customer.updated", obj, fake_billing.changed_fields(before, obj))
    return 200, obj


def delete(path: str):
    if path.startswith("/v1/customers/"):
        cid = path[len("/v1/customers/"):]
        if cid not in OBJECTS or OBJECTS[cid].get("deleted"):
            return error(404, f"No such customer: '{cid}'")
        # Stripe: deleting a customer "also immediately cancels any active subscriptions on
        # the customer" (each with its customer.subscription.deleted event).
        for sid in [o["id"] for o in list(OBJECTS.values())
                    if o.get("object") == "subscription" and customer_of(o) == cid
                    and o.get("status") not in ("canceled", "incomplete_expired")]:
            fake_billing.cancel_subscription(sid)
        OBJECTS[cid] = {"id": cid, "object": "customer", "deleted": True}
        return 200, OBJECTS[cid]
    return None


def customer_of(obj: dict):
    customer = obj.get("customer")
    return customer if isinstance(customer, str) or customer is None else customer.get("id")


def page(data: list, path: str, query: dict):
    """Stripe's cursor paging: newest first, `limit` (1-100, default 10), `starting_after`."""
    try:
        limit = int(query.get("limit", 10))
    except ValueError:
        return error(400, "Invalid integer: limit", "parameter_invalid_integer")
    if not 1 <= limit <= 100:
        return error(400, "This value must be between 1 and 100 (inclusive).", "parameter_invalid_integer")
    data.sort(key=lambda o: (o.get("created") or 0, o["id"]), reverse=True)
    after = query.get("starting_after")
    if after:
        ids = [o["id"] for o in data]
        if after not in ids:
            return error(400, f"No such object: '{after}'", "resource_missing")
        data = data[ids.index(after) + 1:]
    return 200, {"object": "list", "data": data[:limit], "has_more": len(data) > limit, "url": path}


def query_list(path: str, query: dict):
    customer_pms = path.startswith("/v1/customers/") and path.endswith("/payment_methods")
    if customer_pms:
        query = dict(query, customer=path[len("/v1/customers/"):-len("/payment_methods")])
        collection = "payment_methods"
    else:
        collection = path[len("/v1/"):]
    kind = COLLECTIONS.get(collection)
    if kind is None:
        return None
    data = [o for o in OBJECTS.values() if o.get("object") == kind]
    if kind == "payment_method" and not customer_pms and "customer" not in query and "type" not in query:
        return missing("type")
    if "customer" in query:
        data = [o for o in data if customer_of(o) == query["customer"]]
    if kind == "payment_method" and "type" in query:
        data = [o for o in data if o.get("type") == query["type"]]
    if kind == "subscription":
        status = query.get("status")
        if status is None:
            data = [o for o in data if o.get("status") != "canceled"]
        elif status != "all":
            data = [o for o in data if o.get("status") == status]
    if kind == "event":
        # `delivery_success=false`: events still pending or failed at some endpoint, which the
        # event object shows as `pending_webhooks` > 0.
        if "delivery_success" in query:
            want_pending = query["delivery_success"] == "false"
            data = [o for o in data if bool(o.get("pending_webhooks")) == want_pending]
        if "type" in query:
            data = [o for o in data if o.get("type") == query["type"]]
    for op, test in (("gt", lambda a, b: a > b), ("gte", lambda a, b: a >= b),
                     ("lt", lambda a, b: a < b), ("lte", lambda a, b: a <= b)):
        bound = query.get(f"created[{op}]")
        if bound is not None:
            try:
                bound = int(bound)
            except ValueError:
                return error(400, f"Invalid integer: created[{op}]", "parameter_invalid_integer")
            data = [o for o in data if test(o.get("created") or 0, bound)]
    if kind == "invoice":
        if "subscription" in query:
            data = [o for o in data if o.get("subscription") == query["subscription"]
                    or ((o.get("parent") or {}).get("subscription_details") or {}).get("subscription")
                    == query["subscription"]]
        if "status" in query:
            data = [o for o in data if o.get("status") == query["status"]]
    if kind == "checkout.session" and "status" in query:
        data = [o for o in data if o.get("status") == query["status"]]
    keys = [v for k, v in query.items() if k.startswith("lookup_keys")]
    if keys:
        data = [o for o in data if o.get("lookup_key") in keys]
    if "active" in query:
        data = [o for o in data if bool(o.get("active")) == (query["active"] == "true")]
    if "is_default" in query:
        data = [o for o in data if bool(o.get("is_default")) == (query["is_default"] == "true")]
    return page(data, path, query)


def get_one(path: str):
    for collection in sorted(COLLECTIONS, key=len, reverse=True):
        prefix = f"/v1/{collection}/"
        if path.startswith(prefix) and "/" not in path[len(prefix):]:
            obj = OBJECTS.get(path[len(prefix):])
            if obj is None or obj.get("object") != COLLECTIONS[collection]:
                return error(404, f"No such {COLLECTIONS[collection]}: '{path[len(prefix):]}'")
            return 200, copy.deepcopy(obj)
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A reply goes out as two writes (headers, then body). With Nagle's algorithm the body waits
    # for the client's ACK of the headers, which a client reusing its connection delays by
    # ~40 ms: every call on a kept-alive connection would take 44 ms. Stripe shows no such stall.
    disable_nagle_algorithm = True

    def log_message(self, *args):  # quiet
        pass

    def reply(self, status: int, body) -> None:
        local_hosted.reply_json(self, status, body)

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self, method: str) -> None:
        url = urlsplit(self.path)
        raw = self.body()
        if local_hosted.handle(self, method, url, raw):
            return
        if url.path.startswith("/_test/"):
            return self.control(method, url.path, raw)
        # Checked before anything else answers (forwarded calls included): what Stripe would
        # refuse must never reach a fixture or localstripe, which accept anything.
        refused = stripe_params.check(method, url.path, parse_qsl(url.query, keep_blank_values=True)
                                      + parse_qsl(raw.decode(), keep_blank_values=True))
        if refused is not None and (self.headers.get("Authorization") or "").startswith("Bearer sk_test_"):
            with LOCK:
                REQUESTS.append({"method": method, "path": url.path, "query": dict(parse_qsl(url.query)),
                                 "form": dict(parse_qsl(raw.decode())), "refused": refused[1]["error"]})
            return self.reply(*refused)
        if UPSTREAM["url"] and not url.path.startswith(OWNED_PREFIXES):
            return self.forward(method, url, raw)
        if UPSTREAM["url"] and url.path.startswith(SHARED_COLLECTIONS):
            rest = url.path.split("/")[3:]
            if len(rest) == 1 and rest[0] != "create_preview" and rest[0] not in OBJECTS:
                return self.forward(method, url, raw)
            if len(rest) == 2 and rest[0] not in OBJECTS and rest[0].startswith("in_"):
                return self.forward(method, url, raw)
        form = dict(parse_qsl(raw.decode())) if raw else {}
        query = dict(parse_qsl(url.query))
        key = self.headers.get("Idempotency-Key")
        with LOCK:
            REQUESTS.append({"method": method, "path": url.path, "query": query, "form": form,
                             "idempotency_key": key, "stripe_version": self.headers.get("Stripe-Version"),
                             "authorization": (self.headers.get("Authorization") or "")[:12]})
            if FAIL["count"] > 0:
                FAIL["count"] -= 1
                return self.reply(FAIL["status"], {"error": {"type": "api_error", "message": "injected failure"}})
            if not (self.headers.get("Authorization") or "").startswith("Bearer sk_test_"):
                return self.reply(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}})
            foreign = KEY_ACCOUNT["id"] != HOME_ACCOUNT
            if url.path == "/v1/account" and method == "GET":
                result = (200, {"id": KEY_ACCOUNT["id"], "object": "account", "country": "US",
                                "default_currency": "usd", "charges_enabled": True})
                hold = None
            elif foreign:
                # Another account's key: none of this account's objects exist for it.
                return self.reply(*error(404, f"No such object: '{url.path.rsplit('/', 1)[-1]}'"))
            elif method == "GET":
                pairs = parse_qsl(url.query, keep_blank_values=True)
                result = (fake_billing.route("GET", url.path, nested(query), query, pairs)
                          or get_one(url.path) or self.merged_list(url.path, query))
                listed = [e[len("data."):] for e in fake_billing.expands_of(pairs) if e.startswith("data.")]
                if listed and result and result[0] == 200 and (result[1] or {}).get("object") == "list" \
                        and url.path == "/v1/subscriptions":
                    result = (200, dict(result[1], data=[fake_billing.expand(o, listed) for o in result[1]["data"]]))
                if (result and result[0] == 200 and (result[1] or {}).get("object") == "customer"
                        and "tax_ids" in fake_billing.expands_of(pairs)):
                    ids = fake_billing.TAX_IDS.get(result[1]["id"], [])
                    result = (200, dict(result[1], tax_ids={"object": "list", "data": copy.deepcopy(ids),
                                                            "has_more": False,
                                                            "url": f"/v1/customers/{result[1]['id']}/tax_ids"}))
                hold = HOLDS.get(url.path)
                if hold is not None and hold["armed"]:
                    hold.update(armed=False, held=True)
                    if hold["object"] is not None:
                        result = (200, hold["object"])
                else:
                    hold = None
            else:
                hold = None
                if method == "POST" and key:
                    if key in IN_FLIGHT:
                        return self.reply(*error(409, "There is currently another in-progress request using "
                                                      "this Stripe-Idempotency-Key.", "idempotency_key_in_use"))
                    first = IDEMPOTENT.get(key)
                    if first is not None:
                        if (first[0], first[1], first[2]) != (method, url.path, form):
                            return self.reply(*error(400, "Keys for idempotent requests can only be used with the "
                                                          "same parameters they were first used with.", None,
                                                     "idempotency_error"))
                        return self.reply(first[3], copy.deepcopy(first[4]))
                    IN_FLIGHT.add(key)
                delay = LATENCY.get(url.path, 0) if method == "POST" else 0
        if hold is not None:
            # Read now, answer later: a stale response racing a newer read, as on a slow network.
            hold["event"].wait(timeout=60)
            with LOCK:
                hold["held"] = False
            return self.reply(*(result or error(404, "Unrecognized request URL", None)))
        if method == "GET":
            return self.reply(*(result or error(404, f"Unrecognized request URL (GET: {url.path})", None)))
        if delay:
            time.sleep(delay / 1000)
        with LOCK:
            pairs = parse_qsl(url.query, keep_blank_values=True) + parse_qsl(raw.decode(), keep_blank_values=True)
            result = fake_billing.route(method, url.path, nested(dict(
                (k, v) for k, v in pairs if not k.startswith("expand["))), query, pairs)
            if result is None and method == "DELETE":
                result = delete(url.path)
            elif result is None:
                listed = numbered(parse_qsl(raw.decode(), keep_blank_values=True))
                result = create(url.path, listed) or update(url.path, listed)
            if result is None:
                result = error(404, f"Unrecognized request URL ({method}: {url.path})", None)
            if method == "POST" and key:
                IN_FLIGHT.discard(key)
                # Stripe saves the result of a request that began executing, 500s and card
                # declines (402) included, but not one that failed validation (another 4xx here).
                if not 400 <= result[0] < 500 or result[0] == 402:
                    IDEMPOTENT[key] = (method, url.path, form, result[0], copy.deepcopy(result[1]))
        self.reply(*result)

    def merged_list(self, path: str, query: dict):
        """A list; with an upstream, subscriptions and invoices localstripe made itself join the
        fake's own."""
        if not (UPSTREAM["url"] and path in SHARED_COLLECTIONS):
            return query_list(path, query)
        extra = []
        try:
            wanted = {k: v for k, v in query.items() if k in ("customer", "status", "subscription")}
            wanted["limit"] = "100"
            listing = local_hosted.upstream("GET", path + "?" + "&".join(f"{k}={v}" for k, v in wanted.items()))
            extra = [o for o in listing.get("data", []) if o.get("id") not in OBJECTS]
            if "customer" in query:
                extra = [o for o in extra if customer_of(o) == query["customer"]]
        except RuntimeError:
            pass
        saved = {o["id"]: o for o in extra}
        OBJECTS.update(saved)
        try:
            return query_list(path, query)
        finally:
            for oid in saved:
                OBJECTS.pop(oid, None)

    def forward(self, method: str, url, raw: bytes) -> None:
        import urllib.error
        import urllib.request
        path = url.path
        target = self.path
        # localstripe only knows cards and only the older list endpoint.
        if method == "GET" and path.startswith("/v1/customers/") and path.endswith("/payment_methods"):
            customer = path[len("/v1/customers/"):-len("/payment_methods")]
            query = dict(parse_qsl(url.query))
            query.update(customer=customer, type="card")
            target = "/v1/payment_methods?" + "&".join(f"{k}={v}" for k, v in query.items())
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("authorization", "content-type", "idempotency-key", "stripe-version")}
        request = urllib.request.Request(UPSTREAM["url"] + target, data=raw or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                status, body = reply.status, reply.read()
        except urllib.error.HTTPError as err:
            status, body = err.code, err.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def control(self, method: str, path: str, raw: bytes) -> None:
        with LOCK:
            if method == "POST" and path == "/_test/objects":
                obj = json.loads(raw)
                OBJECTS[obj["id"]] = obj
                return self.reply(200, obj)
            if method == "DELETE" and path.startswith("/_test/objects/"):
                OBJECTS.pop(path.rsplit("/", 1)[1], None)
                return self.reply(200, {})
            if method == "POST" and path == "/_test/portal/default":
                return self.reply(200, portal_config.default_configuration(OBJECTS, fake_billing.now(), new_id))
            if method == "GET" and path == "/_test/requests":
                return self.reply(200, REQUESTS)
            if method == "POST" and path == "/_test/fail":
                FAIL.update(json.loads(raw))
                return self.reply(200, FAIL)
            if method == "POST" and path == "/_test/latency":
                spec = json.loads(raw)
                LATENCY[spec["path"]] = int(spec["ms"])
                return self.reply(200, spec)
            if method == "POST" and path == "/_test/hold":
                spec = json.loads(raw)
                HOLDS[spec["path"]] = {"armed": True, "held": False, "event": threading.Event(),
                                       "object": spec.get("object")}
                return self.reply(200, {"path": spec["path"]})
            if method == "GET" and path == "/_test/held":
                return self.reply(200, [p for p, h in HOLDS.items() if h["held"]])
            if method == "POST" and path == "/_test/release":
                hold = HOLDS.pop(json.loads(raw)["path"], None)
                if hold is not None:
                    hold["event"].set()
                return self.reply(200, {})
            if method == "POST" and path.startswith("/_test/checkout/") and path.endswith("/complete"):
                sid = path[len("/_test/checkout/"):-len("/complete")]
                session = OBJECTS.get(sid)
                if session is None or session.get("status") != "open":
                    return self.reply(400, {"error": "session is not open"})
                spec = json.loads(raw or b"{}")
                if "subscription" in spec:
                    session.update(status="complete", payment_status="paid", url=None,
                                   subscription=spec.get("subscription"))
                    return self.reply(200, session)
                # The buyer completes the session as on the Checkout page (without it).
                details, problem = local_hosted.read_details(session, spec)
                if problem:
                    return self.reply(400, {"error": {"type": "invalid_request_error", "message": problem}})
                due = local_hosted.checkout_quote(sid, details)["today"]["total"]
                pm = spec.get("payment_method")
                if pm is None and (due > 0 or session.get("payment_method_collection") != "if_required"):
                    pm = "pm_card_visa"
                if pm:
                    customer = OBJECTS.get(session.get("customer"))
                    if customer is not None and customer.get("object") == "customer":
                        customer["invoice_settings"]["default_payment_method"] = pm
                return self.reply(*local_hosted.complete_checkout(sid, details, pm or None))
            if method == "POST" and path.startswith("/_test/checkout/") and path.endswith("/expire"):
                # The session's `expires_at` passed (without moving the clock).
                sid = path[len("/_test/checkout/"):-len("/expire")]
                return self.reply(*expire_session(sid))
            if method == "GET" and path == "/_test/clock":
                return self.reply(200, {"now": fake_billing.now(), "offset": int(fake_billing.CLOCK["offset"])})
            if method == "POST" and path == "/_test/clock":
                spec = json.loads(raw or b"{}")
                start = fake_billing.now()
                target = int(spec["to"]) if "to" in spec else start + int(spec.get("advance_seconds", 0))
                if target < start:
                    return self.reply(400, {"error": {"type": "invalid_request_error",
                                                      "message": "The clock only moves forward."}})
                done = fake_billing.advance(target, session_timers)
                return self.reply(200, {"now": fake_billing.now(), "offset": int(fake_billing.CLOCK["offset"]),
                                        "happened": [{"at": at, "what": what, "id": oid} for at, what, oid in done]})
            if method == "GET" and path == "/_test/events":
                events = [o for o in OBJECTS.values() if o.get("object") == "event"]
                return self.reply(200, sorted(events, key=lambda e: e["id"]))
            if method == "POST" and path.startswith("/_test/invoices/") and path.endswith("/authenticate"):
                return self.reply(*fake_billing.authenticate(path[len("/_test/invoices/"):-len("/authenticate")]))
            if method == "POST" and path == "/_test/payment_methods":
                spec = json.loads(raw)
                fake_billing.remember_payment_method(spec["id"], spec["behaviour"])
                return self.reply(200, spec)
            if method == "POST" and path == "/_test/account":
                KEY_ACCOUNT["id"] = json.loads(raw)["id"]
                return self.reply(200, KEY_ACCOUNT)
            if method == "POST" and path == "/_test/reset":
                KEY_ACCOUNT["id"] = HOME_ACCOUNT
                for hold in HOLDS.values():
                    hold["event"].set()
                OBJECTS.clear(); REQUESTS.clear(); IDEMPOTENT.clear(); IN_FLIGHT.clear()
                LATENCY.clear(); HOLDS.clear(); FAIL.update(status=0, count=0)
                fake_billing.reset(); local_hosted.reset()
                return self.reply(200, {})
        self.reply(404, {"error": "unknown control call"})

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--upstream", help="forward what this server does not own to this Stripe")
    args = parser.parse_args()
    UPSTREAM["url"] = args.upstream.rstrip("/") if args.upstream else None
    base = f"http://{args.host}:{args.port}"
    local_hosted.configure(UPSTREAM["url"], base, OBJECTS, LOCK, emit)
    fake_billing.bind(OBJECTS, emit, upstream_customer if UPSTREAM["url"] else None)
    if UPSTREAM["url"]:
        fake_billing.STATE["hosted_base"] = base
    threading.Thread(target=deliver_events, daemon=True).start()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
