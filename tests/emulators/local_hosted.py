"""The local stack's stand-ins for Stripe's hosted pages: a Checkout page, a billing-portal page and
a hosted invoice page, served by the fixture Stripe (fake_stripe.py) for the sessions and invoices
it created, so a person (or a browser test) can finish a checkout, manage a subscription and pay an
invoice without the internet.

They do what Stripe's pages do. Customers and cards live in localstripe (the upstream);
subscriptions, their items and invoices live in the fixture Stripe (fake_billing.py), as Stripe
keeps them:
  * Checkout: paying attaches the card in localstripe and makes it the customer's default, then
    creates ONE subscription with one item per line item (like real Checkout), with
    `subscription_data[metadata]` on it and the card as its `default_payment_method`, its first
    invoice paid; completes the Checkout Session; sends `customer.subscription.created`, the
    invoice events and `checkout.session.completed`. What the session collects is asked for
    (labelled fields): company name and VAT number (`tax_id_collection`), the billing address
    (country, line 1, city, postal code: `billing_address_collection=required`, or the country
    for `automatic_tax`), a promotion code (`allow_promotion_codes`, "Apply code" recomputes the
    summary); the summary shows the discount, the tax line (fake_billing.py's rate table) and the
    total; a trial shows "Start N-day free trial", "Nothing to pay today" and the total after
    it, and asks for no card with `payment_method_collection=if_required`. The name and address
    are saved to the customer as `customer_update` allows, the VAT number always.
  * the portal: offers what the session's configuration (portal_config.py) enables: invoice
    history, the card update, billing information (the `allowed_updates`: name, email, address,
    VAT number), cancel in the configured mode (`at_period_end`: sets cancel_at_period_end, or
    undoes it; `immediately`: cancels now), and the monthly/yearly switch only with
    `subscription_update` enabled, to a price its `products` list, on single-item subscriptions
    (Stripe's portal cannot update subscriptions with several items). A session with
    `flow_data[type]=payment_method_update` opens the card update alone, then goes where
    `after_completion` says (redirect, hosted confirmation, the portal's home page).
  * the hosted invoice page (an invoice's `hosted_invoice_url`): pays an open invoice with a new
    card, or completes 3-D Secure for the card that needed it; paying applies a pending update.
Every change sends the events Stripe sends, signed, to the registered webhooks.

Only active with an upstream (the local stack); without one, sessions and invoices keep
Stripe-like URLs on `*.stripe.test` and nothing here runs. Test cards, as in Stripe's test mode:
4242 4242 4242 4242 (Visa) and 5555 5555 5555 4444 (Mastercard) pay; 4000 0000 0000 0002 is
declined; 4000 0000 0000 9995 is declined for insufficient funds; 4000 0000 0000 0341 attaches
(in the portal or on an invoice page) but every later charge is declined; 4000 0025 0000 3155 and
4000 0027 6000 3184 need 3-D Secure on every later charge (on the page itself the buyer
authenticates at once).
"""
import hashlib
import hmac
import html
import json
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qsl, quote

import fake_billing

STATE: dict = {"upstream": None, "base": None, "objects": None, "lock": None, "webhooks": {}, "emit": None}
API_VERSION = None
# Checkout Session id -> what the session was created with (Stripe keeps it as line_items).
CHECKOUTS: dict = {}

# Test card number -> the decline message (None: the card pays).
CARDS = {
    "4242424242424242": None,
    "5555555555554444": None,
    "4000000000000002": "Your card was declined.",
    "4000000000009995": "Your card has insufficient funds.",
    "4000000000000341": None,
    "4000002500003155": None,
    "4000002760003184": None,
}
# Test card number -> how later charges to it go (fake_billing.PM_BEHAVIOUR).
LATER_CHARGES = {"4000000000000341": "decline", "4000002500003155": "authenticate",
                 "4000002760003184": "authenticate"}
STRIPE_KEY = "sk_test_local_hosted_pages"


def configure(upstream, base_url, objects, lock, emit=None) -> None:
    STATE.update(upstream=upstream, base=base_url.rstrip("/"), objects=objects, lock=lock, emit=emit)


def reset() -> None:
    CHECKOUTS.clear()


def enabled() -> bool:
    return bool(STATE["upstream"])


def on_checkout_session(obj: dict, params: dict) -> None:
    """Called when a Checkout Session is created: remember what it was created with (its line
    items, what it collects, its trial), point its URL here (with an upstream)."""
    lines = params.get("line_items", {})
    data = params.get("subscription_data") or {}
    CHECKOUTS[obj["id"]] = {
        "lines": [lines[k] for k in sorted(lines, key=int)],
        "subscription_metadata": data.get("metadata", {}),
        "trial_period_days": int(data["trial_period_days"]) if data.get("trial_period_days") else None,
        "trial_end": int(data["trial_end"]) if data.get("trial_end") else None,
        "missing_payment_method": ((data.get("trial_settings") or {}).get("end_behavior") or {}).get(
            "missing_payment_method"),
        "customer_update": params.get("customer_update") or {},
    }
    if enabled():
        obj["url"] = f"{STATE['base']}/c/pay/{obj['id']}"


# ---- completing a Checkout Session (the page, and the test control) ---------------------------

def session_flags(session: dict) -> dict:
    return {"tax": bool((session.get("automatic_tax") or {}).get("enabled")),
            "tax_ids": bool((session.get("tax_id_collection") or {}).get("enabled")),
            "tax_id_required": (session.get("tax_id_collection") or {}).get("required") == "if_supported",
            "address": session.get("billing_address_collection") == "required",
            "promotion_codes": bool(session.get("allow_promotion_codes")),
            "if_required": session.get("payment_method_collection") == "if_required"}


def read_details(session: dict, given: dict):
    """The buyer's details from a form or a test control's JSON, checked against what the session
    collects: (details, problem). `given`: business_name|name, email, address{country, line1,
    city, postal_code, ...} or the same keys flat, tax_id{type, value} or vat_id, promotion_code."""
    flags = session_flags(session)
    address = dict(given.get("address") or {})
    for key in ("country", "line1", "line2", "city", "postal_code", "state"):
        if given.get(key):
            address[key] = given[key]
    address = {k: (str(v).strip().upper() if k == "country" else str(v).strip()) for k, v in address.items() if v}
    if address:
        address = {k: address.get(k) for k in ("city", "country", "line1", "line2", "postal_code", "state")}
    business = (given.get("business_name") or given.get("company") or "").strip() or None
    tax_id = given.get("tax_id")
    if not tax_id and (given.get("vat_id") or "").strip():
        tax_id = {"type": fake_billing.vat_id_type(address.get("country") if address else ""),
                  "value": given["vat_id"]}
    if tax_id:
        tax_id = {"type": tax_id.get("type"), "value": (tax_id.get("value") or "").replace(" ", "").upper()}
    country = (address or {}).get("country")
    if flags["address"] and not all((address or {}).get(k) for k in ("country", "line1", "city", "postal_code")):
        return None, "Enter your billing address: country, address line 1, city and postal code."
    if flags["tax"] and not country:
        customer = fake_billing.customer_details_of(session.get("customer")) if session.get("customer") else {}
        if not ((customer.get("address") or {}).get("country")):
            return None, "Enter your billing country: tax is computed from it."
    if tax_id:
        if not flags["tax_ids"]:
            return None, "This checkout does not collect tax IDs."
        if not tax_id.get("type"):
            return None, "A VAT number is collected for buyers in the EU and the United Kingdom only."
        problem = fake_billing.vat_id_problem(tax_id["type"], tax_id["value"], country or "")
        if problem:
            return None, problem
        if not business:
            return None, "Enter the company name that goes with the VAT number."
    elif flags["tax_id_required"] and fake_billing.vat_id_type(country or ""):
        return None, "Enter your VAT number."
    code = (given.get("promotion_code") or "").strip()
    promotion = None
    if code:
        if not flags["promotion_codes"]:
            return None, "This checkout does not accept promotion codes."
        promotion = fake_billing.find_promotion_code(code)
        if promotion is None or fake_billing.coupon_of(promotion) is None:
            return None, "This code is invalid."
    return {"business_name": business, "name": business or (given.get("name") or "").strip() or None,
            "email": given.get("email"), "address": address or None, "tax_id": tax_id,
            "promotion": promotion}, None


def checkout_quote(sid: str, details: dict) -> dict:
    """What the first invoice of this session comes to with these details (shown on the page):
    subtotal, discount, tax, total due today, and the renewal total after a trial."""
    session = STATE["objects"][sid]
    info = CHECKOUTS[sid]
    rows = checkout_lines(sid)
    currency = rows[0]["price"].get("currency", "usd") if rows else "usd"
    full = sum((r["price"].get("unit_amount") or 0) * r["quantity"] for r in rows)
    coupon = fake_billing.coupon_of(details["promotion"]) if details.get("promotion") else None

    def priced(subtotal):
        discount = 0
        if coupon and subtotal > 0:
            if coupon.get("percent_off") is not None:
                discount = fake_billing.half_up(int(round(subtotal * float(coupon["percent_off"]) * 100)), 10000)
            else:
                discount = min(int(coupon.get("amount_off") or 0), subtotal)
        tax, reason = 0, None
        if session_flags(session)["tax"]:
            customer = fake_billing.customer_details_of(session.get("customer")) if session.get("customer") else {}
            country = ((details.get("address") or {}).get("country")
                       or ((customer.get("address") or {}).get("country")) or "")
            ids = ([details["tax_id"]] if details.get("tax_id") else []) + list(customer.get("tax_ids") or [])
            pct, reason, _ = fake_billing.treatment_for(country, ids, customer.get("tax_exempt") or "none")
            tax = fake_billing.half_up((subtotal - discount) * pct, 100)
        return {"subtotal": subtotal, "discount": discount, "tax": tax, "reason": reason,
                "total": subtotal - discount + tax}

    trial = info.get("trial_period_days")
    now = fake_billing.now()
    trial_end = now + trial * 86400 if trial else info.get("trial_end")
    today = priced(0 if trial_end else full)
    later = priced(full) if trial_end else None
    return {"currency": currency, "today": today, "later": later, "trial_days": trial,
            "trial_end": trial_end, "rows": rows}


def complete_checkout(sid: str, details: dict, pm_id=None):
    """Completes an open session as Stripe does when the buyer pays (call with the lock held):
    saves the buyer's details to the customer (name and address as `customer_update` allows,
    the tax ID always), creates the subscription (trial, automatic tax, the promotion code's
    discount), completes the session with `customer_details`, totals and discounts, and sends
    `checkout.session.completed`. Returns (status, session | error)."""
    objects = STATE["objects"]
    session = objects.get(sid)
    info = CHECKOUTS.get(sid)
    if session is None or info is None or session.get("status") != "open":
        return fake_billing.err(400, "This Checkout Session is not open.")
    customer = session.get("customer")
    if not customer:
        return fake_billing.err(400, "This fixture completes sessions of an existing customer only.")
    save_customer(customer, info.get("customer_update") or {}, details)
    params = {"customer": customer,
              "items": {str(n): {"price": row["price"]["id"], "quantity": str(row["quantity"])}
                        for n, row in enumerate(checkout_lines(sid))},
              "metadata": dict(info["subscription_metadata"])}
    if info.get("trial_period_days"):
        params["trial_period_days"] = str(info["trial_period_days"])
    elif info.get("trial_end"):
        params["trial_end"] = str(info["trial_end"])
    if info.get("missing_payment_method"):
        params["trial_settings"] = {"end_behavior": {"missing_payment_method": info["missing_payment_method"]}}
    if session_flags(session)["tax"]:
        params["automatic_tax"] = {"enabled": "true"}
    if details.get("promotion"):
        params["discounts"] = {"0": {"promotion_code": details["promotion"]["id"]}}
    status, sub = fake_billing.create_subscription(params, paid_by_checkout=True, pm_override=pm_id)
    if status != 200:
        return status, sub
    inv = objects.get(sub.get("latest_invoice")) or {}
    customer_view = fake_billing.customer_details_of(customer)
    tax_total = sum(t.get("amount") or 0 for t in inv.get("total_taxes") or [])
    discount_total = sum(d.get("amount") or 0 for d in inv.get("total_discount_amounts") or [])
    session.update(
        status="complete", url=None, subscription=sub["id"], invoice=sub.get("latest_invoice"),
        payment_status="paid" if (inv.get("amount_due") or 0) > 0 else "no_payment_required",
        amount_subtotal=inv.get("subtotal"), amount_total=inv.get("total"),
        total_details={"amount_discount": discount_total, "amount_shipping": 0, "amount_tax": tax_total},
        discounts=[{"coupon": (fake_billing.coupon_of(details["promotion"]) or {}).get("id"),
                    "promotion_code": details["promotion"]["id"]}] if details.get("promotion") else [],
        collected_information={"business_name": details.get("business_name"), "individual_name": None,
                               "shipping_details": None},
        customer_details={
            "address": details.get("address") or customer_view.get("address"),
            "business_name": details.get("business_name"), "individual_name": None,
            "email": details.get("email") or customer_view.get("email"),
            "name": details.get("name") or customer_view.get("name"), "phone": None,
            "tax_exempt": customer_view.get("tax_exempt") or "none",
            "tax_ids": [details["tax_id"]] if details.get("tax_id") else []},
    )
    STATE["emit"]("checkout.session.completed", json.loads(json.dumps(session)), None)
    return 200, session


def save_customer(customer: str, allowed: dict, details: dict) -> None:
    """What Checkout saves to an existing customer: `name` and `address` where `customer_update`
    says `auto` (docs.stripe.com/api/checkout/sessions/create#customer_update), the tax ID
    collected (docs.stripe.com/tax/checkout/tax-ids). Sends customer.updated and
    customer.tax_id.created."""
    update = {}
    if allowed.get("name") == "auto" and details.get("name"):
        update["name"] = details["name"]
    if allowed.get("address") == "auto" and details.get("address"):
        update["address"] = details["address"]
    saved = fake_billing.CUSTOMER_DETAILS.setdefault(customer, {})
    saved.update(update)
    if details.get("email") and not saved.get("email"):
        saved["email"] = details["email"]
    tax_id = None
    if details.get("tax_id"):
        tax_id = {"id": fake_billing.new_id("txi"), "object": "tax_id", "country": details["address"]["country"]
                  if details.get("address") else None, "created": fake_billing.now(), "customer": customer,
                  "livemode": False, "owner": {"type": "customer", "customer": customer},
                  "type": details["tax_id"]["type"], "value": details["tax_id"]["value"],
                  "verification": {"status": "pending", "verified_address": None, "verified_name": None}}
        fake_billing.TAX_IDS.setdefault(customer, []).append(tax_id)
    held = STATE["objects"].get(customer)
    if held is not None and held.get("object") == "customer":
        held.update(update)
        obj = held
    else:
        obj = None
        if update and enabled():
            form = {}
            if "name" in update:
                form["name"] = update["name"]
            for k, v in (update.get("address") or {}).items():
                if v:
                    form[f"address[{k}]"] = v
            try:
                obj = upstream("POST", f"/v1/customers/{quote(customer)}", form)
            except RuntimeError:
                obj = None
    if update:
        STATE["emit"]("customer.updated", obj or dict(id=customer, object="customer", **update),
                      {k: None for k in update})
    if tax_id:
        STATE["emit"]("customer.tax_id.created", tax_id, None)


def on_portal_session(obj: dict) -> None:
    if enabled():
        obj["url"] = f"{STATE['base']}/p/session/{obj['id']}"


# ---- Stripe calls and events -------------------------------------------------------------------

def upstream(method: str, path: str, form=None):
    data = "&".join(f"{quote(k)}={quote(str(v))}" for k, v in (form or {}).items()).encode()
    request = urllib.request.Request(
        STATE["upstream"] + path, data=data if method != "GET" else None, method=method,
        headers={"Authorization": f"Bearer {STRIPE_KEY}",
                 "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            body = reply.read()
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"{method} {path}: {err.code} {err.read()[:300]!r}") from err
    return json.loads(body) if body.strip() else {}


def send_event(kind: str, obj: dict, previous=None) -> None:
    """Stores the event in the fixture Stripe, which delivers it (call without holding the lock)."""
    if STATE["emit"] is not None:
        with STATE["lock"]:
            STATE["emit"](kind, obj, previous)
        return
    deliver({"id": f"evt_local{int(time.time() * 1e6)}", "object": "event", "type": kind,
             "livemode": False, "created": int(time.time()), "api_version": API_VERSION,
             "pending_webhooks": len(STATE["webhooks"]), "data": {"object": obj}})


def deliver(event: dict) -> int:
    """Signs and delivers an event to every registered endpoint, as Stripe does; how many took it."""
    body = json.dumps(event).encode()
    delivered = 0
    for url, secret in list(STATE["webhooks"].items()):
        stamp = str(int(time.time()))
        signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Stripe-Signature": f"t={stamp},v1={signature}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                reply.read()
                delivered += 1
        except (urllib.error.URLError, OSError):
            pass  # Stripe would retry; the app's eager sync covers it locally.
    return delivered


# ---- pages -------------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f6f9fc;color:#1a1f36}
main{max-width:34rem;margin:0 auto;padding:1rem}
.box{background:#fff;border:1px solid #e3e8ee;border-radius:.5rem;padding:1rem;margin:1rem 0}
label{display:block;margin:.6rem 0 .2rem;font-weight:600}
input,select{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #c1c9d2;border-radius:.3rem}
button{font:inherit;background:#635bff;color:#fff;border:0;border-radius:.3rem;padding:.6rem 1rem;margin-top:.8rem;cursor:pointer;min-height:2.5rem}
button.secondary{background:#fff;color:#635bff;border:1px solid #635bff}
:focus-visible{outline:3px solid #f4b400;outline-offset:2px}
table{width:100%;border-collapse:collapse}td{padding:.3rem 0}td.amount{text-align:right}
.error{background:#fdecea;border-left:4px solid #b3261e;padding:.5rem 1rem}
.note{color:#596171;font-size:.9rem}.badge{background:#e3f3e8;color:#1f7a43;border-radius:1rem;padding:0 .5rem;font-size:.8rem}
"""


def page(title: str, body: str) -> bytes:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>").encode()


def money(amount: int, currency: str) -> str:
    return f"{currency.upper()} {amount / 100:,.2f}".replace(".00", "")


def card_fields() -> str:
    return ("<label for=card>Card number</label>"
            "<input id=card name=card inputmode=numeric autocomplete=cc-number required placeholder='4242 4242 4242 4242'>"
            "<label for=exp>Expiry (MM / YY)</label><input id=exp name=exp autocomplete=cc-exp required placeholder='12 / 34'>"
            "<label for=cvc>CVC</label><input id=cvc name=cvc inputmode=numeric autocomplete=cc-csc required placeholder='123'>"
            "<p class=note>Test mode. 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined.</p>")


def card_problem(form: dict, charging: bool = False):
    """The card's number and why it cannot pay (None when it can), as Stripe's test mode says.
    `charging`: the page charges it now (4000 0000 0000 0341 attaches but cannot be charged)."""
    number = "".join(ch for ch in form.get("card", "") if ch.isdigit())
    if charging and LATER_CHARGES.get(number) == "decline":
        return number, "Your card was declined."
    return number, CARDS.get(number, "Your card number is incorrect.")


def attach_card(customer: str, number: str, form: dict) -> dict:
    """Creates the card in localstripe, attaches it and makes it the customer's default."""
    digits = "".join(ch if ch.isdigit() else " " for ch in form.get("exp", "")).split()
    month, year = digits[:2] if len(digits) >= 2 else ("12", "30")
    pm = upstream("POST", "/v1/payment_methods", {
        "type": "card", "card[number]": number, "card[exp_month]": int(month),
        "card[exp_year]": int(year), "card[cvc]": form.get("cvc") or "123"})
    pm = upstream("POST", f"/v1/payment_methods/{pm['id']}/attach", {"customer": customer})
    upstream("POST", f"/v1/customers/{customer}", {"invoice_settings[default_payment_method]": pm["id"]})
    with STATE["lock"]:
        fake_billing.remember_payment_method(pm["id"], LATER_CHARGES.get(number, "ok"))
    return pm


def checkout_lines(sid: str):
    objects = STATE["objects"]
    rows = []
    for line in CHECKOUTS[sid]["lines"]:
        price = objects.get(line.get("price"), {})
        product = objects.get(price.get("product"), {})
        rows.append({"price": price, "name": product.get("name") or price.get("lookup_key") or "Item",
                     "quantity": int(line.get("quantity") or 1)})
    return rows


COUNTRIES = [("US", "United States"), ("DE", "Germany"), ("FR", "France"), ("GB", "United Kingdom"),
             ("NL", "Netherlands"), ("AT", "Austria"), ("BE", "Belgium"), ("ES", "Spain"), ("IE", "Ireland"),
             ("IT", "Italy"), ("PL", "Poland"), ("SE", "Sweden"), ("CA", "Canada"), ("CH", "Switzerland")]


def field(name: str, label: str, value: str = "", required: bool = False, autocomplete: str = "", hint: str = "") -> str:
    described = f" aria-describedby={name}-hint" if hint else ""
    note = f"<p class=note id={name}-hint>{html.escape(hint)}</p>" if hint else ""
    return (f"<label for={name}>{html.escape(label)}{'' if required else ' (optional)'}</label>"
            f"<input id={name} name={name} value='{html.escape(value or '', quote=True)}'"
            f"{' required' if required else ''}{f' autocomplete={autocomplete}' if autocomplete else ''}{described}>{note}")


def checkout_page(sid: str, error: str = "", form=None) -> tuple:
    session = STATE["objects"].get(sid)
    if session is None or sid not in CHECKOUTS:
        return 404, page("Not found", "<h1>This checkout link is not valid.</h1>")
    if session.get("status") != "open":
        return 410, page("Checkout", "<h1>This checkout is no longer available.</h1>"
                         f"<p>Its status is {html.escape(str(session.get('status')))}.</p>")
    form = form or {}
    flags = session_flags(session)
    details, _ = read_details(session, form)
    if details is None:
        details, _ = read_details(session, {})
        details = details or {"promotion": None}
        if form.get("promotion_code") and flags["promotion_codes"]:
            details["promotion"] = fake_billing.find_promotion_code(form["promotion_code"])
    q = checkout_quote(sid, details)
    currency, today, later = q["currency"], q["today"], q["later"]
    items = "".join(
        f"<tr><td>{html.escape(r['name'])} <span class=note>billed "
        f"{html.escape(str((r['price'].get('recurring') or {}).get('interval', '')))}ly</span></td>"
        f"<td class=amount>{money((r['price'].get('unit_amount') or 0) * r['quantity'], currency)}</td></tr>"
        for r in q["rows"])
    summary_of = later or today
    rows = items
    if summary_of["discount"]:
        rows += (f"<tr><td>Discount ({html.escape(details['promotion'].get('code') or '')})</td>"
                 f"<td class=amount>−{money(summary_of['discount'], currency)}</td></tr>")
    if flags["tax"]:
        label = {"reverse_charge": "Tax (reverse charge, 0 %)", "not_collecting": "Tax"}.get(summary_of["reason"], "Tax")
        rows += f"<tr><td>{label}</td><td class=amount>{money(summary_of['tax'], currency)}</td></tr>"
    if later:
        ends = time.strftime("%b %d, %Y", time.gmtime(q["trial_end"]))
        heading = f"Start {q['trial_days']}-day free trial" if q["trial_days"] else "Start free trial"
        rows += (f"<tr><td>Total after the trial, from {ends}</td><td class=amount>{money(later['total'], currency)}</td></tr>"
                 f"<tr><td><strong>Total due today</strong></td><td class=amount><strong>{money(0, currency)}</strong></td></tr>")
        due_note = "<p class=note>Nothing to pay today.</p>"
        button = heading
    else:
        heading = "Subscribe"
        rows += (f"<tr><td><strong>Total due today</strong></td>"
                 f"<td class=amount><strong>{money(today['total'], currency)}</strong></td></tr>")
        due_note = ""
        button = "Subscribe"
    need_card = today["total"] > 0 or not flags["if_required"]
    alert = f"<p class=error role=alert>{html.escape(error)}</p>" if error else ""
    v = lambda k: form.get(k, "")  # noqa: E731
    company = ""
    if flags["tax_ids"]:
        company = (field("business_name", "Company name", v("business_name"), False, "organization")
                   + field("vat_id", "VAT number", v("vat_id"), flags["tax_id_required"], "",
                           "EU or UK VAT number, e.g. DE123456789: a business buyer pays no VAT here (reverse charge)."))
    address = ""
    if flags["address"] or flags["tax"]:
        chosen = (v("country") or "").upper()
        options = "".join(f"<option value={c}{' selected' if c == chosen else ''}>{html.escape(n)}</option>"
                          for c, n in COUNTRIES)
        address = (f"<label for=country>Country</label><select id=country name=country required autocomplete=country>"
                   f"<option value=''>Choose a country</option>{options}</select>"
                   + field("line1", "Address line 1", v("line1"), flags["address"], "address-line1")
                   + field("city", "City", v("city"), flags["address"], "address-level2")
                   + field("postal_code", "Postal code", v("postal_code"), flags["address"], "postal-code"))
    promo = ""
    if flags["promotion_codes"]:
        promo = (field("promotion_code", "Promotion code", v("promotion_code"))
                 + "<button type=submit name=action value=apply class=secondary formnovalidate>Apply code</button>")
    body = (f"<h1>{html.escape(heading)}</h1><p class=note>Local test Checkout (no real payment).</p>"
            f"<section class=box aria-label='Order summary'><table>{rows}</table>{due_note}</section>{alert}"
            f"<form method=post class=box aria-label='{'Pay with card' if need_card else 'Your details'}'>"
            f"{field('email', 'Email', v('email'), False, 'email')}"
            f"{company}{address}{promo}"
            f"{card_fields() if need_card else '<p class=note>No card needed now.</p>'}"
            f"<button type=submit name=action value=pay>{html.escape(button)}</button></form>"
            f"<p><a href='{html.escape(session.get('cancel_url') or '/')}'>Back without paying</a></p>")
    return (402 if error else 200), page("Checkout", body)


def pay(sid: str, form: dict) -> tuple:
    objects = STATE["objects"]
    with STATE["lock"]:
        session = objects.get(sid)
        if session is None or sid not in CHECKOUTS or session.get("status") != "open":
            return checkout_page(sid)
        details, problem = read_details(session, form)
        if problem:
            return checkout_page(sid, problem, form)
        if form.get("action") == "apply":
            return checkout_page(sid, "", form)
        due = checkout_quote(sid, details)["today"]["total"]
        need_card = due > 0 or not session_flags(session)["if_required"]
    pm_id = None
    customer = session.get("customer")
    if need_card:
        number, declined = card_problem(form, charging=due > 0)
        if declined:
            return checkout_page(sid, declined, form)
        pm_id = attach_card(customer, number, form)["id"]
    with STATE["lock"]:
        status, body = complete_checkout(sid, details, pm_id)
        if status != 200:
            return checkout_page(sid, body["error"]["message"], form)
    target = (session.get("success_url") or "/").replace("{CHECKOUT_SESSION_ID}", sid)
    return 303, target


def plan_label(plan: dict) -> str:
    key = plan.get("id", "")
    interval = plan.get("interval", "")
    return f"{key} · {money(plan.get('amount') or 0, plan.get('currency', 'usd'))} per {interval}"


def swapped(plan_id: str):
    for a, b in (("_monthly", "_yearly"), ("_yearly", "_monthly")):
        if plan_id and plan_id.endswith(a):
            return plan_id[: -len(a)] + b
    return None


def owned(sub_id: str) -> bool:
    """A subscription the fixture Stripe holds (not one a test made in localstripe directly)."""
    obj = STATE["objects"].get(sub_id)
    return bool(obj) and obj.get("object") == "subscription"


def portal_subscriptions(customer: str) -> list:
    with STATE["lock"]:
        own = [json.loads(json.dumps(o)) for o in STATE["objects"].values()
               if o.get("object") == "subscription" and o.get("customer") == customer]
    listing = upstream("GET", f"/v1/subscriptions?customer={quote(customer)}")
    held = {s["id"] for s in own}
    others = [s for s in listing.get("data", []) if s.get("customer") == customer and s["id"] not in held]
    return [s for s in own + others if s.get("status") not in ("canceled", "incomplete_expired")]


ALL_FEATURES = {"customer_update": {"enabled": True, "allowed_updates": ["address", "email", "name", "tax_id"]},
                "invoice_history": {"enabled": True}, "payment_method_update": {"enabled": True},
                "subscription_cancel": {"enabled": True, "mode": "both"},
                "subscription_update": {"enabled": True, "products": None}}


def portal_features(session: dict) -> dict:
    """What the session's configuration enables (a session made before configurations: all)."""
    config = STATE["objects"].get(session.get("configuration") or "")
    if not config or config.get("object") != "billing_portal.configuration":
        return ALL_FEATURES
    return config.get("features") or {}


def switch_target(sub: dict, features=None):
    """The price of the other billing period for a single-item subscription, None otherwise
    (Stripe's portal cannot update a subscription with several items; it offers only the
    prices the configuration's `subscription_update[products]` lists, and nothing when
    `subscription_update` is off)."""
    update = (features or ALL_FEATURES).get("subscription_update") or {}
    if not update.get("enabled"):
        return None
    items = (sub.get("items") or {}).get("data") or []
    if len(items) != 1:
        return None
    price = items[0].get("price") or {}
    if update.get("products") is not None and owned(sub["id"]):
        product = price.get("product")
        product = product.get("id") if isinstance(product, dict) else product
        interval = (price.get("recurring") or {}).get("interval")
        with STATE["lock"]:
            for entry in update["products"]:
                if entry.get("product") != product:
                    continue
                for pid in entry.get("prices") or []:
                    other = STATE["objects"].get(pid) or {}
                    if other.get("active", True) and (other.get("recurring") or {}).get("interval") not in (None, interval):
                        return pid
        return None
    key = swapped(price.get("lookup_key") or "") if owned(sub["id"]) else swapped((sub.get("plan") or {}).get("id", ""))
    if not key:
        return None
    if not owned(sub["id"]):
        return key
    with STATE["lock"]:
        for obj in STATE["objects"].values():
            if obj.get("object") == "price" and obj.get("lookup_key") == key and obj.get("active", True):
                return obj["id"]
    return None


def cancel_actions(sub: dict, features: dict) -> list:
    cancel = features.get("subscription_cancel") or {}
    if not cancel.get("enabled"):
        return []
    mode = cancel.get("mode") or "at_period_end"
    actions = []
    if mode in ("at_period_end", "both"):
        actions.append(("resume", "Don't cancel") if sub.get("cancel_at_period_end")
                       else ("cancel_at_period_end", "Cancel at period end"))
    if mode in ("immediately", "both"):
        actions.append(("cancel_now", "Cancel now"))
    return actions


def invoice_history(customer: str) -> str:
    with STATE["lock"]:
        invoices = sorted((json.loads(json.dumps(o)) for o in STATE["objects"].values()
                           if o.get("object") == "invoice" and o.get("customer") == customer
                           and o.get("status") in ("open", "paid", "uncollectible")),
                          key=lambda o: (o.get("created") or 0, o["id"]), reverse=True)
    rows = "".join(
        f"<li data-invoice='{html.escape(o['id'])}'>{time.strftime('%b %d, %Y', time.gmtime(o.get('created') or 0))} · "
        f"{money(o.get('total') or 0, o.get('currency', 'usd'))} · {html.escape(o.get('status') or '')}"
        + (f" · <a href='{html.escape(o.get('hosted_invoice_url') or '')}'>Pay</a>" if o.get("status") == "open" else "")
        + "</li>" for o in invoices)
    return f"<section class=box aria-label='Invoice history'><h2>Invoice history</h2><ul>{rows or '<li>None</li>'}</ul></section>"


def customer_section(customer: str, allowed: list) -> str:
    fields = ""
    if "name" in allowed:
        fields += field("name", "Name", autocomplete="name")
    if "email" in allowed:
        fields += field("email", "Email", autocomplete="email")
    if "address" in allowed:
        fields += (field("country", "Country (two letters)", autocomplete="country")
                   + field("line1", "Address line 1", autocomplete="address-line1")
                   + field("city", "City", autocomplete="address-level2")
                   + field("postal_code", "Postal code", autocomplete="postal-code"))
    if "tax_id" in allowed:
        fields += field("vat_id", "VAT number")
    if not fields:
        return ""
    return (f"<section class=box><h2>Billing information</h2><form method=post aria-label='Billing information'>"
            f"<input type=hidden name=action value=customer>{fields}<button type=submit>Save</button></form></section>")


def save_portal_customer(customer: str, allowed: list, form: dict):
    """The portal's customer update: only the fields the configuration allows. An error or None."""
    details = {}
    if "name" in allowed and form.get("name", "").strip():
        details["name"] = form["name"].strip()
    if "email" in allowed and form.get("email", "").strip():
        details["email"] = form["email"].strip()
    address = {k: form.get(k, "").strip() for k in ("country", "line1", "city", "postal_code")}
    if "address" in allowed and any(address.values()):
        address["country"] = address["country"].upper()
        details["address"] = {"city": address["city"] or None, "country": address["country"] or None,
                              "line1": address["line1"] or None, "line2": None,
                              "postal_code": address["postal_code"] or None, "state": None}
    vat = form.get("vat_id", "").replace(" ", "").upper()
    if "tax_id" in allowed and vat:
        country = (details.get("address") or fake_billing.customer_details_of(customer).get("address") or {}).get("country") or ""
        kind = fake_billing.vat_id_type(country)
        problem = (fake_billing.vat_id_problem(kind, vat, country) if kind
                   else "A VAT number is collected for buyers in the EU and the United Kingdom only.")
        if problem:
            return problem
        details["tax_id"] = {"type": kind, "value": vat}
    with STATE["lock"]:
        save_customer(customer, {"name": "auto", "address": "auto"}, details)
        if details.get("email"):
            fake_billing.CUSTOMER_DETAILS.setdefault(customer, {})["email"] = details["email"]
            held = STATE["objects"].get(customer)
            if held is not None and held.get("object") == "customer":
                held["email"] = details["email"]
    return None


def subscription_label(sub: dict) -> str:
    items = (sub.get("items") or {}).get("data") or []
    if not owned(sub["id"]):
        return plan_label(sub.get("plan") or {})
    parts = []
    for item in items:
        price = item.get("price") or {}
        name = fake_billing.product_name(price) if price.get("id") else "Item"
        interval = (price.get("recurring") or {}).get("interval", "")
        parts.append(f"{name} · {money((price.get('unit_amount') or 0) * (item.get('quantity') or 1), price.get('currency', 'usd'))} per {interval}")
    return " + ".join(parts) or sub["id"]


def portal_page(psid: str, notice: str = "", home: bool = False) -> tuple:
    """The portal: what the session's configuration enables (invoice history, card update,
    billing information, cancel in its mode, the monthly/yearly switch); a session with a
    `flow` (a deep link) shows that flow alone until it is done."""
    session = STATE["objects"].get(psid)
    if session is None or session.get("object") != "billing_portal.session":
        return 404, page("Not found", "<h1>This billing link is not valid.</h1>")
    customer = session.get("customer")
    features = portal_features(session)
    flow = None if home else session.get("flow")
    flash = f"<p class=box role=status>{html.escape(notice)}</p>" if notice else ""
    back = f"<p><a href='{html.escape(session.get('return_url') or '/')}'>Return to the app</a></p>"
    if flow and flow.get("type") == "payment_method_update":
        body = (f"<h1>Update payment method</h1><p class=note>Local test billing portal.</p>{flash}"
                f"{card_section(customer)}{back}")
        return 200, page("Update payment method", body)
    only = (flow.get(flow["type"]) or {}).get("subscription") if flow else None
    blocks = []
    for sub in portal_subscriptions(customer):
        if only and sub["id"] != only:
            continue
        end = sub.get("current_period_end") or fake_billing.period_of(sub)[1]
        ends = time.strftime("%b %d, %Y", time.gmtime(end or 0))
        state = (f"Cancels on {ends}" if sub.get("cancel_at_period_end") else f"Renews on {ends}")
        sid = html.escape(sub["id"])
        actions = cancel_actions(sub, features)
        target = None if (flow and flow["type"] == "subscription_cancel") else switch_target(sub, features)
        if target:
            interval = ((((sub.get("items") or {}).get("data") or [{}])[0].get("price") or {}).get("recurring") or {}).get("interval") \
                or (sub.get("plan") or {}).get("interval")
            actions.append(("switch", "Switch to yearly" if interval == "month" else "Switch to monthly"))
        buttons = "".join(
            f"<form method=post style=display:inline><input type=hidden name=subscription value='{sid}'>"
            f"<button type=submit name=action value={a} class=secondary>{html.escape(label)}</button></form> "
            for a, label in actions)
        blocks.append(f"<section class=box data-subscription='{sid}'><h2>{html.escape(subscription_label(sub))}</h2>"
                      f"<p>Status: {html.escape(sub.get('status', ''))} · {state}</p>{buttons}</section>")
    body = (f"<h1>Manage billing</h1><p class=note>Local test billing portal.</p>{flash}"
            + ("".join(blocks) or "<p class=box>No active subscriptions.</p>"))
    if not flow:
        if (features.get("payment_method_update") or {}).get("enabled"):
            body += card_section(customer)
        update = features.get("customer_update") or {}
        if update.get("enabled"):
            body += customer_section(customer, update.get("allowed_updates") or [])
        if (features.get("invoice_history") or {}).get("enabled"):
            body += invoice_history(customer)
    return 200, page("Manage billing", body + back)


def card_section(customer: str) -> str:
    customer_obj = upstream("GET", f"/v1/customers/{quote(customer)}")
    default = ((customer_obj.get("invoice_settings") or {}).get("default_payment_method"))
    methods = upstream("GET", f"/v1/payment_methods?customer={quote(customer)}&type=card").get("data", [])
    cards = "".join(
        f"<li>{html.escape(str((m.get('card') or {}).get('brand', 'card')).title())} ending in "
        f"{html.escape(str((m.get('card') or {}).get('last4', '')))}"
        f"{' <span class=badge>Default</span>' if m.get('id') == default else ''}</li>" for m in methods)
    return (f"<section class=box><h2>Payment methods</h2><ul>{cards or '<li>None</li>'}</ul>"
            f"<form method=post aria-label='Add a card'><input type=hidden name=action value=card>{card_fields()}"
            f"<button type=submit>Add card and make it the default</button></form></section>")


def after_flow(psid: str, session: dict, done: str) -> tuple:
    """Where a deep-linked flow goes once done (`flow.after_completion`)."""
    after = ((session.get("flow") or {}).get("after_completion")) or {}
    if after.get("type") == "redirect":
        return 303, (after.get("redirect") or {}).get("return_url") or "/"
    if after.get("type") == "hosted_confirmation":
        message = (after.get("hosted_confirmation") or {}).get("custom_message") or NOTICES.get(done, "Done.")
        return 200, page("Done", f"<h1>Done</h1><p class=box role=status>{html.escape(message)}</p>"
                                 f"<p><a href='{html.escape(session.get('return_url') or '/')}'>Return to the app</a></p>")
    return 303, f"/p/session/{psid}?done={done}&home=1"


def portal_action(psid: str, form: dict) -> tuple:
    session = STATE["objects"].get(psid)
    if session is None or session.get("object") != "billing_portal.session":
        return portal_page(psid)
    customer = session.get("customer")
    features = portal_features(session)
    action = form.get("action")
    flow = session.get("flow")
    if action == "card":
        if not (features.get("payment_method_update") or {}).get("enabled"):
            return portal_page(psid, "Updating the payment method is not available here.")
        number, declined = card_problem(form)
        if declined:
            return portal_page(psid, declined)
        pm = attach_card(customer, number, form)
        send_event("payment_method.attached", pm)
        # The portal's card becomes the default of the customer and of its subscriptions.
        with STATE["lock"]:
            for sub in [o for o in STATE["objects"].values()
                        if o.get("object") == "subscription" and o.get("customer") == customer
                        and o.get("status") != "canceled" and o.get("default_payment_method")]:
                fake_billing.update_subscription(sub["id"], {"default_payment_method": pm["id"]})
        if flow and flow.get("type") == "payment_method_update":
            return after_flow(psid, session, "card")
        return 303, f"/p/session/{psid}?done=card"
    if action == "customer":
        update = features.get("customer_update") or {}
        if not update.get("enabled"):
            return portal_page(psid, "Updating billing information is not available here.")
        problem = save_portal_customer(customer, update.get("allowed_updates") or [], form)
        if problem:
            return portal_page(psid, problem)
        return 303, f"/p/session/{psid}?done=customer"
    sub_id = form.get("subscription", "")
    subs = {s["id"]: s for s in portal_subscriptions(customer)}
    if sub_id not in subs:
        return portal_page(psid, "That subscription is not one of yours.")
    allowed = {a for a, _ in cancel_actions(subs[sub_id], features)}
    if action == "switch" and not switch_target(subs[sub_id], features):
        return portal_page(psid, "This subscription cannot be changed here.")
    if action in ("cancel_at_period_end", "resume", "cancel_now") and action not in allowed:
        return portal_page(psid, "Canceling this way is not available here.")
    if owned(sub_id):
        if action == "switch":
            target = switch_target(subs[sub_id], features)
            item = subs[sub_id]["items"]["data"][0]
            proration = ((features.get("subscription_update") or {}).get("proration_behavior")) or "create_prorations"
            change = lambda: fake_billing.update_subscription(  # noqa: E731
                sub_id, {"items": {"0": {"id": item["id"], "price": target}},
                         "proration_behavior": proration})
        elif action == "cancel_now":
            change = lambda: fake_billing.cancel_subscription(sub_id)  # noqa: E731
        elif action in ("cancel_at_period_end", "resume"):
            flag = "true" if action == "cancel_at_period_end" else "false"
            change = lambda: fake_billing.update_subscription(sub_id, {"cancel_at_period_end": flag})  # noqa: E731
        else:
            return portal_page(psid, "Unknown action.")
        with STATE["lock"]:
            status, body = change()
        if status != 200:
            return portal_page(psid, body["error"]["message"])
        done = 'canceled' if action == 'cancel_now' else action
        if flow:
            return after_flow(psid, session, done)
        return 303, f"/p/session/{psid}?done={done}"
    # A subscription a test made in localstripe directly: changed there, as before.
    if action == "cancel_now":
        upstream("DELETE", f"/v1/subscriptions/{quote(sub_id)}")  # localstripe sends .deleted
        return 303, f"/p/session/{psid}?done=canceled"
    if action in ("cancel_at_period_end", "resume"):
        flag = "true" if action == "cancel_at_period_end" else "false"
        sub = upstream("POST", f"/v1/subscriptions/{quote(sub_id)}", {"cancel_at_period_end": flag})
    elif action == "switch":
        sub = upstream("GET", f"/v1/subscriptions/{quote(sub_id)}")
        item = sub["items"]["data"][0]
        target = swapped(item["plan"]["id"])
        if not target:
            return portal_page(psid, "This plan has no other billing period.")
        sub = upstream("POST", f"/v1/subscriptions/{quote(sub_id)}",
                       {"items[0][id]": item["id"], "items[0][plan]": target})
    else:
        return portal_page(psid, "Unknown action.")
    send_event("customer.subscription.updated", sub)
    return 303, f"/p/session/{psid}?done={action}"


def invoice_page(iid: str, notice: str = "", status_code: int = 200) -> tuple:
    with STATE["lock"]:
        inv = STATE["objects"].get(iid)
        inv = json.loads(json.dumps(inv)) if inv else None
        needs_auth = bool(inv) and inv.get("status") == "open" and inv.get("attempted") and \
            fake_billing.PM_BEHAVIOUR.get(fake_billing.payment_method_for(
                STATE["objects"].get(inv.get("subscription")) or {"customer": inv.get("customer")}) or "") == "authenticate"
    if inv is None or inv.get("object") != "invoice":
        return 404, page("Not found", "<h1>This invoice link is not valid.</h1>")
    currency = inv.get("currency", "usd")
    rows = "".join(f"<tr><td>{html.escape(l.get('description') or '')}</td>"
                   f"<td class=amount>{money(l.get('amount') or 0, currency)}</td></tr>"
                   for l in inv["lines"]["data"])
    alert = f"<p class=error role=alert>{html.escape(notice)}</p>" if notice else ""
    summary = (f"<section class=box aria-label='Invoice'><table>{rows}<tr><td><strong>Amount due</strong></td>"
               f"<td class=amount><strong>{money(inv.get('amount_due') or 0, currency)}</strong></td></tr></table></section>")
    if inv.get("status") == "paid":
        body = f"<h1>Invoice paid</h1>{summary}<p role=status class=box>This invoice is paid. Thank you.</p>"
        return 200, page("Invoice", body)
    if inv.get("status") != "open":
        return 410, page("Invoice", f"<h1>This invoice is {html.escape(str(inv.get('status')))}.</h1>")
    auth = ("<form method=post class=box aria-label='Authenticate'><p>Your bank asks you to confirm this payment.</p>"
            "<input type=hidden name=action value=authenticate>"
            "<button type=submit>Complete authentication</button></form>") if needs_auth else ""
    body = (f"<h1>Pay invoice</h1><p class=note>Local test invoice page (no real payment).</p>{summary}{alert}{auth}"
            f"<form method=post class=box aria-label='Pay with card'><input type=hidden name=action value=card>"
            f"{card_fields()}<button type=submit>Pay {money(inv.get('amount_due') or 0, currency)}</button></form>")
    return status_code, page("Invoice", body)


def invoice_action(iid: str, form: dict) -> tuple:
    with STATE["lock"]:
        inv = STATE["objects"].get(iid)
        customer = inv.get("customer") if inv else None
    if inv is None or inv.get("object") != "invoice":
        return invoice_page(iid)
    if form.get("action") == "authenticate":
        with STATE["lock"]:
            status, body = fake_billing.authenticate(iid)
        if status != 200:
            return invoice_page(iid, body["error"]["message"], 402)
        return 303, f"/i/{iid}"
    number, declined = card_problem(form, charging=True)
    if declined:
        return invoice_page(iid, declined, 402)
    pm = attach_card(customer, number, form)
    with STATE["lock"]:
        fake_billing.AUTHENTICATED.add(iid)  # the buyer is on the page: 3-D Secure happens here
        status, body = fake_billing.pay_invoice(iid, {"payment_method": pm["id"]})
    if status != 200:
        return invoice_page(iid, body["error"]["message"], 402)
    return 303, f"/i/{iid}"


NOTICES = {"card": "Your default card was updated.", "canceled": "The subscription was canceled.",
           "customer": "Your billing information was saved.",
           "cancel_at_period_end": "The subscription will end at the end of the period.",
           "resume": "The subscription will renew.", "switch": "The billing period was switched."}


def handle(handler, method: str, url, raw: bytes) -> bool:
    """The fixture Stripe's hook: serves the pages; False for anything else."""
    path = url.path
    if method == "POST" and path == "/_local/webhooks":
        form = dict(parse_qsl(raw.decode()))
        STATE["webhooks"][form["url"]] = form["secret"]
        reply_json(handler, 200, {"registered": form["url"]})
        return True
    if not enabled() or not (path.startswith("/c/pay/") or path.startswith("/p/session/")
                             or path.startswith("/i/")):
        return False
    form = dict(parse_qsl(raw.decode())) if raw else {}
    key = path.rsplit("/", 1)[1]
    try:
        if path.startswith("/c/pay/"):
            result = pay(key, form) if method == "POST" else checkout_page(key)
        elif path.startswith("/i/"):
            result = invoice_action(key, form) if method == "POST" else invoice_page(key)
        else:
            query = dict(parse_qsl(url.query))
            notice = NOTICES.get(query.get("done", ""), "")
            result = portal_action(key, form) if method == "POST" else portal_page(key, notice, bool(query.get("home")))
    except RuntimeError as err:
        result = (502, page("Error", f"<h1>Something went wrong</h1><p class=error>{html.escape(str(err))}</p>"))
    status, body = result
    if status == 303:
        handler.send_response(303)
        handler.send_header("Location", body)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    else:
        handler.send_response(status)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return True


def reply_json(handler, status: int, body) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
