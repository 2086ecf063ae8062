"""The local stack's stand-ins for Stripe's hosted pages: a Checkout page and a billing-portal
page, served by the fixture Stripe (fake_stripe.py) for the sessions it created, so a person (or a
browser test) can finish a checkout and manage a subscription without the internet.

They do what Stripe's pages do, in the local Stripe: paying creates the subscription in
localstripe (the upstream), makes the card the customer's default, completes the Checkout Session
and sends its signed `checkout.session.completed`; the portal cancels at period end (or undoes
it), cancels now, switches monthly/yearly and changes the default card, and sends the events
localstripe itself never sends (`customer.subscription.updated`, `payment_method.attached`).
Known difference: localstripe allows one item per subscription, so a Checkout with several
modules makes one subscription per module (Stripe makes one with several items).

Only active with an upstream (the local stack); without one, sessions keep Stripe-like URLs on
`*.stripe.test` and nothing here runs. Test cards, as in Stripe's test mode:
4242 4242 4242 4242 (Visa) and 5555 5555 5555 4444 (Mastercard) pay; 4000 0000 0000 0002 is
declined; 4000 0000 0000 9995 is declined for insufficient funds.
"""
import hashlib
import hmac
import html
import json
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qsl, quote

STATE: dict = {"upstream": None, "base": None, "objects": None, "lock": None, "webhooks": {}}
# Checkout Session id -> what the session was created with (Stripe keeps it as line_items).
CHECKOUTS: dict = {}

# Test card number -> the decline message (None: the card pays).
CARDS = {
    "4242424242424242": None,
    "5555555555554444": None,
    "4000000000000002": "Your card was declined.",
    "4000000000009995": "Your card has insufficient funds.",
}
STRIPE_KEY = "sk_test_local_hosted_pages"


def configure(upstream, base_url, objects, lock) -> None:
    STATE.update(upstream=upstream, base=base_url.rstrip("/"), objects=objects, lock=lock)


def enabled() -> bool:
    return bool(STATE["upstream"])


def on_checkout_session(obj: dict, params: dict) -> None:
    """Called when a Checkout Session is created: remember its line items, point its URL here."""
    if not enabled():
        return
    lines = params.get("line_items", {})
    CHECKOUTS[obj["id"]] = {
        "lines": [lines[k] for k in sorted(lines, key=int)],
        "subscription_metadata": params.get("subscription_data", {}).get("metadata", {}),
    }
    obj["url"] = f"{STATE['base']}/c/pay/{obj['id']}"


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


def send_event(kind: str, obj: dict) -> None:
    """Signs and delivers an event to every registered endpoint, as Stripe does."""
    event = {"id": f"evt_local{int(time.time() * 1e6)}", "object": "event", "type": kind,
             "livemode": False, "created": int(time.time()), "api_version": None,
             "pending_webhooks": len(STATE["webhooks"]), "data": {"object": obj}}
    body = json.dumps(event).encode()
    for url, secret in list(STATE["webhooks"].items()):
        stamp = str(int(time.time()))
        signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Stripe-Signature": f"t={stamp},v1={signature}"})
        try:
            urllib.request.urlopen(request, timeout=30).read()
        except (urllib.error.URLError, OSError):
            pass  # Stripe would retry; the app's eager sync covers it locally.


# ---- pages -------------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f6f9fc;color:#1a1f36}
main{max-width:34rem;margin:0 auto;padding:1rem}
.box{background:#fff;border:1px solid #e3e8ee;border-radius:.5rem;padding:1rem;margin:1rem 0}
label{display:block;margin:.6rem 0 .2rem;font-weight:600}
input{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #c1c9d2;border-radius:.3rem}
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


def card_problem(form: dict):
    """The card's number and why it cannot pay (None when it can), as Stripe's test mode says."""
    number = "".join(ch for ch in form.get("card", "") if ch.isdigit())
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


def checkout_page(sid: str, error: str = "") -> tuple:
    session = STATE["objects"].get(sid)
    if session is None or sid not in CHECKOUTS:
        return 404, page("Not found", "<h1>This checkout link is not valid.</h1>")
    if session.get("status") != "open":
        return 410, page("Checkout", "<h1>This checkout is no longer available.</h1>"
                         f"<p>Its status is {html.escape(str(session.get('status')))}.</p>")
    rows = checkout_lines(sid)
    total = sum((r["price"].get("unit_amount") or 0) * r["quantity"] for r in rows)
    currency = rows[0]["price"].get("currency", "usd") if rows else "usd"
    items = "".join(
        f"<tr><td>{html.escape(r['name'])} <span class=note>billed "
        f"{html.escape(str((r['price'].get('recurring') or {}).get('interval', '')))}ly</span></td>"
        f"<td class=amount>{money((r['price'].get('unit_amount') or 0) * r['quantity'], currency)}</td></tr>"
        for r in rows)
    alert = f"<p class=error role=alert>{html.escape(error)}</p>" if error else ""
    body = (f"<h1>Subscribe</h1><p class=note>Local test Checkout (no real payment).</p>"
            f"<section class=box aria-label='Order summary'><table>{items}"
            f"<tr><td><strong>Total due today</strong></td><td class=amount><strong>{money(total, currency)}</strong></td></tr>"
            f"</table></section>{alert}"
            f"<form method=post class=box aria-label='Pay with card'>{card_fields()}"
            f"<button type=submit>Subscribe</button></form>"
            f"<p><a href='{html.escape(session.get('cancel_url') or '/')}'>Back without paying</a></p>")
    return (402 if error else 200), page("Checkout", body)


def pay(sid: str, form: dict) -> tuple:
    objects = STATE["objects"]
    with STATE["lock"]:
        session = objects.get(sid)
        if session is None or sid not in CHECKOUTS or session.get("status") != "open":
            return checkout_page(sid)
    number, declined = card_problem(form)
    if declined:
        return checkout_page(sid, declined)
    customer = session.get("customer")
    attach_card(customer, number, form)
    subscriptions = []
    for row in checkout_lines(sid):
        form_data = {"customer": customer, "items[0][plan]": row["price"].get("lookup_key"),
                     "items[0][quantity]": row["quantity"]}
        for key, value in CHECKOUTS[sid]["subscription_metadata"].items():
            form_data[f"metadata[{key}]"] = value
        subscriptions.append(upstream("POST", "/v1/subscriptions", form_data))
    with STATE["lock"]:
        session.update(status="complete", payment_status="paid",
                       subscription=subscriptions[0]["id"] if subscriptions else None)
        completed = json.loads(json.dumps(session))
    send_event("checkout.session.completed", completed)
    target = (session.get("success_url") or "/").replace("{CHECKOUT_SESSION_ID}", sid)
    return 303, target


def plan_label(plan: dict) -> str:
    key = plan.get("id", "")
    interval = plan.get("interval", "")
    return f"{key} · {money(plan.get('amount') or 0, plan.get('currency', 'usd'))} per {interval}"


def swapped(plan_id: str):
    for a, b in (("_monthly", "_yearly"), ("_yearly", "_monthly")):
        if plan_id.endswith(a):
            return plan_id[: -len(a)] + b
    return None


def portal_subscriptions(customer: str) -> list:
    listing = upstream("GET", f"/v1/subscriptions?customer={quote(customer)}")
    return [s for s in listing.get("data", []) if s.get("customer") == customer
            and s.get("status") not in ("canceled", "incomplete_expired")]


def portal_page(psid: str, notice: str = "") -> tuple:
    session = STATE["objects"].get(psid)
    if session is None or session.get("object") != "billing_portal.session":
        return 404, page("Not found", "<h1>This billing link is not valid.</h1>")
    customer = session.get("customer")
    subs = portal_subscriptions(customer)
    blocks = []
    for sub in subs:
        plan = sub.get("plan") or {}
        other = swapped(plan.get("id", ""))
        ends = time.strftime("%b %d, %Y", time.gmtime(sub.get("current_period_end") or 0))
        state = (f"Cancels on {ends}" if sub.get("cancel_at_period_end") else f"Renews on {ends}")
        sid = html.escape(sub["id"])
        actions = [
            ("resume", "Don't cancel") if sub.get("cancel_at_period_end") else ("cancel_at_period_end", "Cancel at period end"),
            ("cancel_now", "Cancel now"),
        ]
        if other:
            actions.append(("switch", "Switch to yearly" if other.endswith("_yearly") else "Switch to monthly"))
        buttons = "".join(
            f"<form method=post style=display:inline><input type=hidden name=subscription value='{sid}'>"
            f"<button type=submit name=action value={a} class=secondary>{html.escape(label)}</button></form> "
            for a, label in actions)
        blocks.append(f"<section class=box data-subscription='{sid}'><h2>{html.escape(plan_label(plan))}</h2>"
                      f"<p>Status: {html.escape(sub.get('status', ''))} · {state}</p>{buttons}</section>")
    customer_obj = upstream("GET", f"/v1/customers/{quote(customer)}")
    default = ((customer_obj.get("invoice_settings") or {}).get("default_payment_method"))
    methods = upstream("GET", f"/v1/payment_methods?customer={quote(customer)}&type=card").get("data", [])
    cards = "".join(
        f"<li>{html.escape(str((m.get('card') or {}).get('brand', 'card')).title())} ending in "
        f"{html.escape(str((m.get('card') or {}).get('last4', '')))}"
        f"{' <span class=badge>Default</span>' if m.get('id') == default else ''}</li>" for m in methods)
    flash = f"<p class=box role=status>{html.escape(notice)}</p>" if notice else ""
    body = (f"<h1>Manage billing</h1><p class=note>Local test billing portal.</p>{flash}"
            + ("".join(blocks) or "<p class=box>No active subscriptions.</p>")
            + f"<section class=box><h2>Payment methods</h2><ul>{cards or '<li>None</li>'}</ul>"
            f"<form method=post aria-label='Add a card'><input type=hidden name=action value=card>{card_fields()}"
            f"<button type=submit>Add card and make it the default</button></form></section>"
            f"<p><a href='{html.escape(session.get('return_url') or '/')}'>Return to the app</a></p>")
    return 200, page("Manage billing", body)


def portal_action(psid: str, form: dict) -> tuple:
    session = STATE["objects"].get(psid)
    if session is None or session.get("object") != "billing_portal.session":
        return portal_page(psid)
    customer = session.get("customer")
    action = form.get("action")
    if action == "card":
        number, declined = card_problem(form)
        if declined:
            return portal_page(psid, declined)
        send_event("payment_method.attached", attach_card(customer, number, form))
        return 303, f"/p/session/{psid}?done=card"
    sub_id = form.get("subscription", "")
    if sub_id not in {s["id"] for s in portal_subscriptions(customer)}:
        return portal_page(psid, "That subscription is not one of yours.")
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


NOTICES = {"card": "Your default card was updated.", "canceled": "The subscription was canceled.",
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
    if not enabled() or not (path.startswith("/c/pay/") or path.startswith("/p/session/")):
        return False
    form = dict(parse_qsl(raw.decode())) if raw else {}
    key = path.rsplit("/", 1)[1]
    try:
        if path.startswith("/c/pay/"):
            result = pay(key, form) if method == "POST" else checkout_page(key)
        else:
            notice = NOTICES.get(dict(parse_qsl(url.query)).get("done", ""), "")
            result = portal_action(key, form) if method == "POST" else portal_page(key, notice)
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
