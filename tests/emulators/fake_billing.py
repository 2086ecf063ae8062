"""The fixture Stripe's billing core: subscriptions with several items, their invoices, prorations,
previews, test payment methods and pending updates, as Stripe documents them. fake_stripe.py routes
`/v1/subscriptions`, `/v1/subscription_items` and `/v1/invoices` here (in both modes: with
`--upstream` too, these are never localstripe's); local_hosted.py creates Checkout's subscription
and pays invoices through it.

What it follows (docs.stripe.com):
  * one subscription, several items, one invoice per period; all items share currency and
    interval (classic billing mode; mixed intervals need flexible mode): 400 otherwise, and the
    same price twice is refused;
  * the period is a calendar month (or year) from the billing cycle anchor; each item carries
    `current_period_start/end` (API 2025-03-31 and later);
  * prorations (billing/subscriptions/prorations): an added item costs
    unit_amount x quantity x (period_end - proration_date) / (period_end - period_start), to the
    second, rounded half up to the cent; a removed or swapped-out item gets the negative
    "Unused time on ..." line, the new price the positive "Remaining time on ..." line;
    `proration_date` must lie in the current period and not in the future;
  * `proration_behavior`: `create_prorations` (default; pending invoice items that the next
    invoice carries), `none`, `always_invoice` (an invoice with the proration lines at once);
  * `payment_behavior` on updates: `allow_incomplete` (default: change applied, invoice open,
    subscription past_due when the charge fails), `default_incomplete` (no attempt: invoice open,
    past_due), `error_if_incomplete` (402, nothing changes), `pending_if_incomplete` (pending
    updates: the subscription unchanged but `pending_update`, `expires_at` 23 h later; only the
    parameters of the pending-updates reference are accepted);
  * invoices are charged to the subscription's `default_payment_method`, else the customer's
    `invoice_settings.default_payment_method`; test payment methods: `pm_card_visa` (and any other
    id) pays, `pm_card_chargeCustomerFail` declines every charge (`card_declined`),
    `pm_card_authenticationRequired` needs 3-D Secure on every charge
    (`invoice_payment_intent_requires_action` when it cannot be asked for);
  * `POST /v1/invoices/create_preview`: what the same update would invoice, not stored; the
    preview of `always_invoice` with a `proration_date` equals what the update with that date
    charges;
  * tax: NOT Stripe Tax, a fixed rate table (see "tax" below: DE 19 %, FR 20 %, GB 20 %, NL 21 %,
    elsewhere 0 % `not_collecting`; an EU/UK VAT ID of the buyer's country: reverse charge 0 %),
    on every invoice of a subscription with `automatic_tax[enabled]` (first invoice, prorations,
    renewals, previews): lines' `taxes`, the invoice's `total_taxes` ({amount, tax_behavior,
    tax_rate_details{tax_rate}, taxability_reason, taxable_amount, type}), `subtotal`,
    `subtotal_excluding_tax`, `total_excluding_tax`, `total`, `amount_due`, and the customer's
    `customer_name|email|address|tax_ids|tax_exempt` copied onto it;
  * discounts: `discounts[]` ({coupon} | {promotion_code}) on subscriptions (Checkout's promotion
    code puts one there): percent_off or amount_off on the discountable lines (prorations are not
    discountable, as invoice items default), before tax; the invoice's `discounts`,
    `total_discount_amounts` ({amount, discount}) and lines' `discount_amounts`; `once` is used up
    by the first invoice it reduces, `repeating` ends `duration_in_months` after it starts;
  * trials (`trial_period_days`, `trial_end`, `trial_settings.end_behavior.missing_payment_method`):
    status `trialing`, the period [start, trial_end], a paid $0 invoice ("Trial period for ...");
    `customer.subscription.trial_will_end` 3 days before the end; at the end, with a payment
    method: `active`, a `subscription_cycle` invoice charged; without one: `cancel` -> canceled
    (`customer.subscription.deleted`), `pause` -> paused, `create_invoice` -> past_due;
  * the clock (`advance`, `POST /_test/clock`): `now()` is the wall clock plus the advance;
    moving it runs what falls due in time order (trial_will_end, trial ends, renewals at the
    period end with a `subscription_cycle` invoice charged at once, declines -> past_due and
    `invoice.payment_failed`, cancel_at_period_end endings);
  * an interval change (every item to a price of another interval) resets the billing cycle
    anchor to now: the invoice credits each old item's unused time from `proration_date` and
    charges each new price in full for [now, now + 1 interval];
  * subscription schedules: see "subscription schedules" below;
  * events: `customer.subscription.created|updated|deleted|paused|trial_will_end|pending_update_applied`,
    `subscription_schedule.created|updated|released|completed|canceled`,
    `invoice.created|finalized|paid|payment_succeeded|payment_failed|payment_action_required`.
"""
import calendar
import copy
import datetime
import itertools
import json
import os
import time

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "stripe")
STATE = {"objects": None, "emit": None, "customer": None, "hosted_base": None}
COUNTER = itertools.count(1)
# payment-method id -> "ok" | "decline" | "authenticate" (Stripe's test ids, and the cards the
# local hosted pages attached in localstripe).
PM_BEHAVIOUR = {"pm_card_chargeCustomerFail": "decline", "pm_card_authenticationRequired": "authenticate",
                "pm_card_visa_chargeDeclined": "decline", "pm_card_chargeDeclined": "decline"}
TEST_PM_BEHAVIOUR = dict(PM_BEHAVIOUR)
# subscription id -> proration lines not invoiced yet (`create_prorations`)
PENDING_ITEMS: dict = {}
# invoice ids for which the buyer completed 3-D Secure
AUTHENTICATED: set = set()
# open invoice id -> the subscription whose pending update it pays for
PENDING_FOR: dict = {}
PENDING_UPDATE_PARAMS = {"expand", "payment_behavior", "proration_behavior", "proration_date",
                         "billing_cycle_anchor", "items", "trial_end", "trial_from_plan", "add_invoice_items"}
PENDING_UPDATE_ITEM_PARAMS = {"id", "price", "quantity"}
PENDING_UPDATE_SECONDS = 23 * 3600
# customer id -> its tax ids ({"id", "object": "tax_id", "type", "value", ...}), as Checkout's
# tax ID collection saves them; CUSTOMER_DETAILS: customer id -> {"name", "email", "address"}
# Checkout saved (read when the customer object itself lacks them, e.g. localstripe refused).
TAX_IDS: dict = {}
CUSTOMER_DETAILS: dict = {}
# subscriptions whose `customer.subscription.trial_will_end` was sent
TRIAL_WILL_END_SENT: set = set()
TRIAL_WILL_END_SECONDS = 3 * 86400


def bind(objects, emit, customer_lookup=None) -> None:
    STATE.update(objects=objects, emit=emit, customer=customer_lookup)


def reset() -> None:
    CLOCK["offset"] = 0.0
    TAX_IDS.clear()
    CUSTOMER_DETAILS.clear()
    TRIAL_WILL_END_SENT.clear()
    PM_BEHAVIOUR.clear()
    PM_BEHAVIOUR.update(TEST_PM_BEHAVIOUR)
    PENDING_ITEMS.clear()
    AUTHENTICATED.clear()
    PENDING_FOR.clear()


def remember_payment_method(pm_id: str, behaviour: str) -> None:
    PM_BEHAVIOUR[pm_id] = behaviour


def fixture(name: str) -> dict:
    with open(os.path.join(FIXTURES, f"{name}.latest.json")) as f:
        return json.load(f)


def new_id(prefix: str) -> str:
    return f"{prefix}_fakeb{next(COUNTER):06d}{int(time.time() * 1000) % 100000:05d}"


def err(status, message, code=None, param=None, kind="invalid_request_error", **extra):
    body = {"type": kind, "message": message}
    if code:
        body["code"] = code
    if param:
        body["param"] = param
    body.update(extra)
    return status, {"error": body}


# The fixture's clock: `POST /_test/clock` moves it forward (as a Stripe test clock does); every
# time fake_billing reads or stamps is `now()`.
CLOCK = {"offset": 0.0}


def now() -> int:
    return int(time.time() + CLOCK["offset"])


def set_now(ts: int) -> None:
    """Moves the clock to `ts` (never backwards)."""
    CLOCK["offset"] = max(CLOCK["offset"], ts - time.time())


def half_up(num: int, den: int) -> int:
    """num / den rounded half away from zero (den > 0)."""
    q = (2 * abs(num) + den) // (2 * den)
    return q if num >= 0 else -q


# ---- periods and money ---------------------------------------------------------------------------

def add_interval(ts: int, interval: str, count: int = 1, anchor_day: int = None) -> int:
    """`ts` moved on by `count` intervals, as Stripe's billing cycle anchor does (a monthly period
    from Jan 31 ends Feb 28/29, then Mar 31)."""
    d = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    if interval == "day":
        return ts + 86400 * count
    if interval == "week":
        return ts + 7 * 86400 * count
    months = count * (12 if interval == "year" else 1)
    year, month = divmod(d.month - 1 + months, 12)
    year += d.year
    month += 1
    day = min(anchor_day or d.day, calendar.monthrange(year, month)[1])
    return int(d.replace(year=year, month=month, day=day).timestamp())


def prorate(amount: int, start: int, end: int, at: int) -> int:
    """amount x (end - at) / (end - start), half up to the cent (away from zero for credits)."""
    span = end - start
    if span <= 0:
        return 0
    num = abs(amount) * (end - at)
    cents = (2 * num + span) // (2 * span)
    return cents if amount >= 0 else -cents


def day_text(ts: int) -> str:
    return time.strftime("%d %b %Y", time.gmtime(ts))


def money_text(amount: int, currency: str) -> str:
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency, "")
    return f"{symbol}{amount / 100:,.2f}" if symbol else f"{amount / 100:,.2f} {currency.upper()}"


# ---- tax: a fixed rate table standing in for Stripe Tax ------------------------------------------
#
# NOT Stripe Tax's engine: a small fixed table, enough to check that tax reaches invoices.
# The account is a US account (acct_1LocalPssFixture, `country: US`) registered to collect VAT in
# DE, FR, GB and NL and nowhere else; prices are exclusive of tax unless their `tax_behavior`
# says `inclusive` (the account's default tax behavior is taken to be `exclusive`).
# Rules, after docs.stripe.com/tax/zero-tax (taxability reasons) and /tax/checkout/tax-ids:
#   * the buyer's location is the customer's address country (Checkout saves it with
#     `customer_update[address]=auto`);
#   * a customer with `tax_exempt: reverse`, or with a VAT ID of its own country (`eu_vat` for an
#     EU country, `gb_vat` for GB) pays 0 %, `taxability_reason: reverse_charge` (B2B: the buyer
#     accounts for the VAT; the seller is outside the EU/UK, so every such sale is cross-border);
#     `tax_exempt: exempt` pays 0 %, `customer_exempt`;
#   * otherwise the country's standard rate from TAX_RATES, `standard_rated`; a country the account
#     is not registered in (the US included) 0 %, `not_collecting`;
#   * tax is computed per invoice line on the line's amount after its discounts, rounded half up
#     to the cent; exclusive: tax = round(net x rate), added to the total; inclusive:
#     taxable = round(net / (1 + rate)), tax = net - taxable, inside the total.
SELLER_COUNTRY = "US"
TAX_RATES = {"DE": 19, "FR": 20, "GB": 20, "NL": 21}
EU_COUNTRIES = {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
                "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"}


def vat_id_problem(kind: str, value: str, country: str):
    """Why this VAT ID cannot be a tax ID of a buyer in `country` (None when it can): `eu_vat`
    is the country's two-letter prefix (EL for Greece) and 2-12 letters or digits, `gb_vat` GB
    and 9 or 12 digits, as Stripe's tax ID formats (docs.stripe.com/tax/checkout/tax-ids)."""
    value = (value or "").replace(" ", "").upper()
    if kind == "eu_vat":
        if country not in EU_COUNTRIES:
            return "An EU VAT number is for a buyer in the EU."
        prefix = "EL" if country == "GR" else country
        body = value[2:]
        if not value.startswith(prefix) or not 2 <= len(body) <= 12 or not body.isalnum():
            return f"Invalid value for eu_vat: {value or '(empty)'}."
        return None
    if kind == "gb_vat":
        if country != "GB":
            return "A UK VAT number is for a buyer in the United Kingdom."
        if not value.startswith("GB") or not value[2:].isdigit() or len(value[2:]) not in (9, 12):
            return f"Invalid value for gb_vat: {value or '(empty)'}."
        return None
    return f"Tax ID type {kind} is not collected here (eu_vat, gb_vat)."


def vat_id_type(country: str):
    return "eu_vat" if country in EU_COUNTRIES else "gb_vat" if country == "GB" else None


def customer_tax_ids(customer_id) -> list:
    held = list(TAX_IDS.get(customer_id) or [])
    cust = lookup_customer(customer_id) or {}
    listed = cust.get("tax_ids")
    listed = listed.get("data") if isinstance(listed, dict) else listed
    for t in listed or []:
        if isinstance(t, dict) and t.get("value") not in {h.get("value") for h in held}:
            held.append(t)
    return held


def customer_details_of(customer_id) -> dict:
    cust = lookup_customer(customer_id) or {}
    saved = CUSTOMER_DETAILS.get(customer_id) or {}
    address = cust.get("address") if (cust.get("address") or {}).get("country") else saved.get("address")
    return {"name": cust.get("name") or saved.get("name"), "email": cust.get("email") or saved.get("email"),
            "address": address, "tax_exempt": cust.get("tax_exempt") or "none",
            "tax_ids": customer_tax_ids(customer_id)}


def tax_treatment(customer_id):
    """(rate percent, taxability_reason, country) for this customer's invoices."""
    details = customer_details_of(customer_id)
    country = ((details.get("address") or {}).get("country") or "").upper()
    return treatment_for(country, details["tax_ids"], details["tax_exempt"])


def treatment_for(country: str, tax_ids: list, tax_exempt: str = "none"):
    country = (country or "").upper()
    if tax_exempt == "exempt":
        return 0, "customer_exempt", country
    if tax_exempt == "reverse":
        return 0, "reverse_charge", country
    if country not in TAX_RATES:
        return 0, "not_collecting", country
    for t in tax_ids:
        if t.get("type") in ("eu_vat", "gb_vat") and vat_id_problem(t["type"], t.get("value"), country) is None:
            return 0, "reverse_charge", country
    return TAX_RATES[country], "standard_rated", country


def tax_rate_id(country: str, percent: int) -> str:
    """The id of the tax rate Stripe Tax would name (one per country and percentage)."""
    return f"txr_fake_{(country or 'xx').lower()}_{percent}"


def price_tax_behavior(price: dict) -> str:
    held = price_object(price.get("id")) if price.get("id") else None
    behaviour = (held or price).get("tax_behavior")
    return behaviour if behaviour in ("inclusive", "exclusive") else "exclusive"


# ---- discounts: promotion codes and their coupons ------------------------------------------------

def find_promotion_code(code: str):
    """The active promotion code whose `code` (case-insensitive, as Stripe matches them) or id this
    is, None otherwise."""
    wanted = (code or "").strip().lower()
    for obj in STATE["objects"].values():
        if obj.get("object") == "promotion_code" and wanted in ((obj.get("code") or "").lower(), obj.get("id", "").lower()):
            if obj.get("active", True) is False:
                return None
            if obj.get("expires_at") and obj["expires_at"] <= now():
                return None
            return obj
    return None


def coupon_of(ref):
    """A coupon object from an id, an embedded coupon, or a promotion code (`coupon` in API
    versions before 2025-09-30, `promotion.coupon` since)."""
    if isinstance(ref, dict) and ref.get("object") == "promotion_code":
        ref = ref.get("coupon") or (ref.get("promotion") or {}).get("coupon")
    if isinstance(ref, dict):
        return ref
    held = STATE["objects"].get(ref) if ref else None
    return held if held and held.get("object") == "coupon" else None


def new_discount(coupon: dict, customer, sub_id, promotion=None, session=None) -> dict:
    t = now()
    end = None
    if coupon.get("duration") == "repeating":
        end = add_interval(t, "month", int(coupon.get("duration_in_months") or 1))
    disc = {"id": new_id("di"), "object": "discount", "checkout_session": session, "customer": customer,
            "customer_account": None, "end": end, "invoice": None, "invoice_item": None,
            "promotion_code": promotion.get("id") if promotion else None,
            "source": {"coupon": coupon.get("id"), "type": "coupon"}, "start": t,
            "subscription": sub_id, "subscription_item": None}
    DISCOUNTS[disc["id"]] = {"discount": disc, "coupon": copy.deepcopy(coupon), "used": False}
    if promotion is not None:
        promotion["times_redeemed"] = (promotion.get("times_redeemed") or 0) + 1
    return disc


# discount id -> {"discount": the discount object, "coupon": its coupon, "used": a `once` one applied}
DISCOUNTS: dict = {}


def discounts_from_params(entries, customer, sub_id, param="discounts"):
    """`discounts[]` entries ({coupon} | {promotion_code} | {discount}) as discount ids."""
    ids = []
    for n, entry in enumerate(indexed(entries)):
        if entry.get("discount") in DISCOUNTS:
            ids.append(entry["discount"])
            continue
        promotion = None
        if entry.get("promotion_code"):
            promotion = find_promotion_code(entry["promotion_code"])
            if promotion is None:
                return None, err(400, f"No such promotion code: '{entry['promotion_code']}'", "resource_missing",
                                 f"{param}[{n}][promotion_code]")
            coupon = coupon_of(promotion)
        else:
            coupon = coupon_of(entry.get("coupon"))
        if coupon is None:
            return None, err(400, f"No such coupon: '{entry.get('coupon')}'", "resource_missing", f"{param}[{n}][coupon]")
        ids.append(new_discount(coupon, customer, sub_id, promotion)["id"])
    return ids, None


def live_discounts(sub: dict, at: int) -> list:
    out = []
    for did in sub.get("discounts") or []:
        did = did.get("id") if isinstance(did, dict) else did
        held = DISCOUNTS.get(did)
        if held is None or held["used"]:
            continue
        end = held["discount"].get("end")
        if end and end <= at:
            continue
        out.append(held)
    return out


def finish_invoice(inv: dict, sub: dict, consume: bool = True) -> dict:
    """Discounts (before tax), tax (automatic tax on the subscription) and the totals of an
    invoice whose lines are set. `consume`: a `once` discount that reduced it is used up (not for
    previews)."""
    lines = inv["lines"]["data"]
    for l in lines:
        l["discount_amounts"], l["discounts"], l["taxes"] = [], [], []
    discounts = live_discounts(sub, inv.get("period_end") or now())
    totals = []
    for held in discounts:
        coupon, did = held["coupon"], held["discount"]["id"]
        open_lines = [l for l in lines if l.get("discountable") and
                      l["amount"] - sum(d["amount"] for d in l["discount_amounts"]) > 0]
        remaining = {l["id"]: l["amount"] - sum(d["amount"] for d in l["discount_amounts"]) for l in open_lines}
        if coupon.get("percent_off") is not None:
            pct = float(coupon["percent_off"])
            cuts = {lid: min(left, half_up(int(round(left * pct * 100)), 10000)) for lid, left in remaining.items()}
        else:
            want = min(int(coupon.get("amount_off") or 0), sum(remaining.values()))
            base = sum(remaining.values())
            cuts, given = {}, 0
            for n, (lid, left) in enumerate(remaining.items()):
                cut = want - given if n == len(remaining) - 1 else (want * left) // base if base else 0
                cuts[lid], given = cut, given + cut
        total = 0
        for l in open_lines:
            if cuts.get(l["id"]):
                l["discount_amounts"].append({"amount": cuts[l["id"]], "discount": did})
                l["discounts"].append(did)
                total += cuts[l["id"]]
        totals.append({"amount": total, "discount": did})
        if consume and total > 0 and coupon.get("duration") == "once":
            held["used"] = True
    enabled = bool((sub.get("automatic_tax") or {}).get("enabled"))
    customer = inv.get("customer")
    details = customer_details_of(customer) if customer else {"tax_ids": [], "tax_exempt": "none"}
    total_taxes = {}
    inclusive_tax = exclusive_tax = 0
    if enabled:
        pct, reason, country = tax_treatment(customer)
        rate = tax_rate_id(country, pct)
        for l in lines:
            net = l["amount"] - sum(d["amount"] for d in l["discount_amounts"])
            behaviour = price_tax_behavior({"id": ((l.get("pricing") or {}).get("price_details") or {}).get("price")})
            if behaviour == "inclusive":
                taxable = half_up(net * 100, 100 + pct)
                tax = net - taxable
                inclusive_tax += tax
            else:
                taxable, tax = net, half_up(net * pct, 100)
                exclusive_tax += tax
            entry = {"amount": tax, "tax_behavior": behaviour, "tax_rate_details": {"tax_rate": rate},
                     "taxability_reason": reason, "taxable_amount": taxable, "type": "tax_rate_details"}
            l["taxes"] = [entry]
            key = (behaviour, reason, rate)
            agg = total_taxes.setdefault(key, dict(entry, amount=0, taxable_amount=0))
            agg["amount"] += tax
            agg["taxable_amount"] += taxable
    subtotal = sum(l["amount"] for l in lines)
    discount = sum(t["amount"] for t in totals)
    total = subtotal - discount + exclusive_tax
    preview = inv["id"].startswith("upcoming_")
    inv.update(
        subtotal=subtotal, subtotal_excluding_tax=subtotal - inclusive_tax,
        total_excluding_tax=subtotal - discount - inclusive_tax, total=total,
        amount_due=max(total, 0), amount_remaining=max(total, 0),
        ending_balance=None if preview else min(total, 0),
        total_discount_amounts=totals, discounts=[t["discount"] for t in totals],
        total_taxes=list(total_taxes.values()),
        automatic_tax={"disabled_reason": None, "enabled": enabled, "liability": {"type": "self"} if enabled else None,
                       "provider": "stripe" if enabled else None, "status": "complete" if enabled else None},
        customer_name=details.get("name"), customer_email=details.get("email"),
        customer_address=details.get("address"), customer_tax_exempt=details.get("tax_exempt") or "none",
        customer_tax_ids=[{"type": t.get("type"), "value": t.get("value")} for t in details.get("tax_ids") or []],
    )
    return inv


# ---- prices and items ----------------------------------------------------------------------------

def price_object(ref):
    """The full price the fake holds for an id (or an embedded price), None if unknown."""
    objects = STATE["objects"]
    if isinstance(ref, dict):
        held = objects.get(ref.get("id"))
        return copy.deepcopy(held) if held and held.get("object") == "price" else ref
    held = objects.get(ref)
    if held and held.get("object") == "price":
        return copy.deepcopy(held)
    # A legacy plan id (localstripe-era tests): a price whose lookup key is that id.
    for obj in objects.values():
        if obj.get("object") == "price" and obj.get("lookup_key") == ref and obj.get("active", True):
            return copy.deepcopy(obj)
    return None


def price_interval(price: dict):
    rec = price.get("recurring") or {}
    return rec.get("interval"), int(rec.get("interval_count") or 1)


def product_name(price: dict) -> str:
    product = price.get("product")
    pid = product.get("id") if isinstance(product, dict) else product
    held = STATE["objects"].get(pid) or {}
    return held.get("name") or price.get("nickname") or price.get("lookup_key") or price.get("id")


def plan_of(price: dict) -> dict:
    interval, count = price_interval(price)
    return {"id": price["id"], "object": "plan", "active": price.get("active", True),
            "amount": price.get("unit_amount"), "amount_decimal": str(price.get("unit_amount")),
            "billing_scheme": "per_unit", "created": price.get("created"), "currency": price.get("currency"),
            "interval": interval, "interval_count": count, "livemode": False,
            "metadata": price.get("metadata") or {}, "meter": None, "nickname": price.get("nickname"),
            "product": price.get("product"), "tiers_mode": None, "transform_usage": None,
            "trial_period_days": None, "usage_type": "licensed"}


def new_item(sub_id: str, price: dict, quantity: int, start: int, end: int, metadata=None) -> dict:
    return {"id": new_id("si"), "object": "subscription_item", "billing_thresholds": None,
            "created": now(), "current_period_start": start, "current_period_end": end,
            "discounts": [], "metadata": metadata or {}, "plan": plan_of(price), "price": price,
            "quantity": quantity, "subscription": sub_id, "tax_rates": []}


def items_of(sub: dict) -> list:
    return list((sub.get("items") or {}).get("data") or [])


def period_of(sub: dict):
    items = items_of(sub)
    start = sub.get("current_period_start") or min(
        (i.get("current_period_start") or 0 for i in items), default=0)
    end = sub.get("current_period_end") or max((i.get("current_period_end") or 0 for i in items), default=0)
    return int(start or 0), int(end or 0)


def item_price(item: dict) -> dict:
    return price_object(item.get("price") or {}) or item.get("price") or {}


def indexed(hash_or_list) -> list:
    if isinstance(hash_or_list, list):
        return hash_or_list
    if not isinstance(hash_or_list, dict):
        return []
    return [hash_or_list[k] for k in sorted(hash_or_list, key=lambda k: int(k) if k.isdigit() else 0)]


def check_items(items: list, param: str = "items"):
    """Stripe's checks on the resulting item set: prices known, one item per price, one currency
    and one interval (classic billing mode)."""
    seen = set()
    for item in items:
        price = item["price"]
        if price["id"] in seen:
            return err(400, f"Cannot add multiple subscription items with the same price: {price['id']}",
                       None, param)
        seen.add(price["id"])
    currencies = {i["price"].get("currency") for i in items}
    intervals = {price_interval(i["price"]) for i in items}
    if len(currencies) > 1:
        return err(400, "Currency and interval fields must match across all plans on this subscription. "
                        "Found mismatch in currency field.", None, param)
    if len(intervals) > 1:
        return err(400, "Currency and interval fields must match across all plans on this subscription. "
                        "Found mismatch in interval field.", None, param)
    if not items:
        return err(400, "A subscription must have at least one active plan.", None, param)
    return None


def resolve_price(ref, param):
    price = price_object(ref) if ref else None
    if price is None:
        return None, err(400, f"No such price: '{ref}'", "resource_missing", param)
    if price.get("type") != "recurring" and not price.get("recurring"):
        return None, err(400, f"The price specified is set to `type=one_time` but this field only accepts "
                              f"prices with `type=recurring`.", None, param)
    return price, None


def apply_item_changes(sub: dict, changes: list, start: int, end: int, param="items"):
    """The item set after `items[]` changes, and (removed, added, swapped) for prorations:
    removed = [old item], added = [new item], swapped = [(old item, new item)] (price or quantity)."""
    current = [copy.deepcopy(i) for i in items_of(sub)]
    by_id = {i["id"]: i for i in current}
    removed, added, changed = [], [], []
    for n, change in enumerate(changes):
        here = f"{param}[{n}]"
        iid = change.get("id")
        if iid:
            old = by_id.get(iid)
            if old is None or old not in current:
                return None, err(400, f"No such subscription item: '{iid}'", "resource_missing", f"{here}[id]")
            if change.get("deleted") == "true":
                current.remove(old)
                removed.append(old)
                continue
            new = copy.deepcopy(old)
            if change.get("price") or change.get("plan"):
                price, problem = resolve_price(change.get("price") or change.get("plan"), f"{here}[price]")
                if problem:
                    return None, problem
                new["price"], new["plan"] = price, plan_of(price)
            if change.get("quantity") not in (None, ""):
                new["quantity"] = int(change["quantity"])
            if "metadata" in change:
                new["metadata"] = {**(new.get("metadata") or {}), **change["metadata"]}
                new["metadata"] = {k: v for k, v in new["metadata"].items() if v != ""}
            if new["price"]["id"] != old["price"]["id"] or new.get("quantity") != old.get("quantity"):
                changed.append((old, new))
            current[current.index(old)] = new
        else:
            if change.get("deleted") == "true":
                return None, err(400, "You must specify the id of the subscription item to delete.", None,
                                 f"{here}[id]")
            price, problem = resolve_price(change.get("price") or change.get("plan"), f"{here}[price]")
            if problem:
                return None, problem
            quantity = int(change.get("quantity") or 1)
            item = new_item(sub["id"], price, quantity, start, end, change.get("metadata"))
            current.append(item)
            added.append(item)
    problem = check_items(current, param)
    if problem:
        return None, problem
    return (current, removed, added, changed), None


# ---- invoices ------------------------------------------------------------------------------------

def line(sub_id, item, amount, description, start, end, proration, invoice_item=None):
    price = item["price"]
    product = price.get("product")
    return {"id": new_id("il"), "object": "line_item", "amount": amount, "currency": price.get("currency"),
            "description": description, "discount_amounts": [], "discountable": not proration,
            "discounts": [], "invoice": None, "livemode": False, "metadata": {},
            "parent": {"type": "subscription_item_details", "invoice_item_details": None,
                       "subscription_item_details": {
                           "invoice_item": invoice_item, "proration": proration,
                           "proration_details": {"credited_items": None}, "subscription": sub_id,
                           "subscription_item": item["id"]}},
            "period": {"start": start, "end": end}, "pretax_credit_amounts": [],
            "pricing": {"type": "price_details",
                        "price_details": {"price": price["id"],
                                          "product": product.get("id") if isinstance(product, dict) else product},
                        "unit_amount_decimal": str(price.get("unit_amount") or 0)},
            "quantity": item.get("quantity") or 1, "subtotal": amount, "taxes": []}


def full_line(sub_id, item, start, end):
    price = item["price"]
    qty = item.get("quantity") or 1
    interval, _ = price_interval(price)
    amount = (price.get("unit_amount") or 0) * qty
    text = f"{qty} × {product_name(price)} (at {money_text(price.get('unit_amount') or 0, price.get('currency') or 'usd')} / {interval})"
    return line(sub_id, item, amount, text, start, end, False)


def proration_lines(sub_id, removed, added, changed, start, end, at):
    lines = []
    def unused(item):
        price = item["price"]
        qty = item.get("quantity") or 1
        amount = -prorate((price.get("unit_amount") or 0) * qty, start, end, at)
        return line(sub_id, item, amount, f"Unused time on {qty} × {product_name(price)} after {day_text(at)}",
                    at, end, True, new_id("ii"))
    def remaining(item):
        price = item["price"]
        qty = item.get("quantity") or 1
        amount = prorate((price.get("unit_amount") or 0) * qty, start, end, at)
        return line(sub_id, item, amount, f"Remaining time on {qty} × {product_name(price)} after {day_text(at)}",
                    at, end, True, new_id("ii"))
    for old, new in changed:
        lines += [unused(old), remaining(new)]
    lines += [unused(old) for old in removed]
    lines += [remaining(new) for new in added]
    return lines


def invoice_object(sub: dict, lines: list, reason: str, period, preview=False) -> dict:
    inv = fixture("invoice")
    total = sum(l["amount"] for l in lines)
    iid = f"upcoming_in_{new_id('p')[2:]}" if preview else new_id("in")
    for l in lines:
        l["invoice"] = iid
    currency = (lines[0]["currency"] if lines else None) or sub.get("currency") or "usd"
    customer = sub.get("customer")
    customer = customer.get("id") if isinstance(customer, dict) else customer
    inv.update(
        id=iid, object="invoice", created=now(), customer=customer, currency=currency,
        billing_reason=reason, subscription=sub.get("id"), livemode=False, metadata={},
        lines={"object": "list", "data": lines, "has_more": False, "url": f"/v1/invoices/{iid}/lines"},
        subtotal=total, subtotal_excluding_tax=total, total=total, total_excluding_tax=total,
        amount_due=max(total, 0), amount_paid=0, amount_remaining=max(total, 0), amount_overpaid=0,
        amount_shipping=0, starting_balance=0, ending_balance=None if preview else min(total, 0),
        attempt_count=0, attempted=False, auto_advance=not preview, status="draft",
        status_transitions={"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                            "voided_at": None},
        period_start=period[0], period_end=period[1], hosted_invoice_url=None, invoice_pdf=None,
        number=None, due_date=None, effective_at=None, next_payment_attempt=None,
        last_finalization_error=None, from_invoice=None, latest_revision=None, webhooks_delivered_at=None,
        default_payment_method=None, shipping_cost=None, total_discount_amounts=[], total_taxes=[],
        parent={"type": "subscription_details", "quote_details": None,
                "subscription_details": {"metadata": copy.deepcopy(sub.get("metadata") or {}),
                                         "subscription": sub.get("id")}},
    )
    if preview:
        inv.pop("id")
        inv["id"] = iid
    return finish_invoice(inv, sub, consume=not preview)


def store_invoice(inv: dict) -> dict:
    """Finalizes and stores an invoice (invoice.created, invoice.finalized)."""
    t = now()
    base = STATE.get("hosted_base")
    inv["hosted_invoice_url"] = (f"{base}/i/{inv['id']}" if base else f"https://invoice.stripe.test/i/{inv['id']}")
    inv["invoice_pdf"] = inv["hosted_invoice_url"] + "/pdf"
    inv["number"] = f"FAKE-{next(COUNTER):04d}"
    inv["status"] = "open"
    inv["effective_at"] = t
    inv["status_transitions"]["finalized_at"] = t
    STATE["objects"][inv["id"]] = inv
    emit("invoice.created", dict(inv, status="draft"))
    emit("invoice.finalized", inv)
    return inv


def payment_method_for(sub: dict, override=None):
    if override:
        return override
    if sub.get("default_payment_method"):
        pm = sub["default_payment_method"]
        return pm.get("id") if isinstance(pm, dict) else pm
    customer = sub.get("customer")
    customer = customer.get("id") if isinstance(customer, dict) else customer
    cust = lookup_customer(customer) or {}
    pm = (cust.get("invoice_settings") or {}).get("default_payment_method")
    pm = pm.get("id") if isinstance(pm, dict) else pm
    return pm or cust.get("default_source")


def lookup_customer(customer_id):
    if STATE["customer"] is not None:
        return STATE["customer"](customer_id)
    obj = STATE["objects"].get(customer_id)
    return obj if obj and obj.get("object") == "customer" and not obj.get("deleted") else None


def charge(inv: dict, sub: dict, pm_override=None, attempt=True):
    """Tries to pay an open invoice: None when paid, else the failure ("decline" |
    "authenticate" | "no_payment_method"). Sends the invoice events."""
    if inv["amount_due"] <= 0:
        mark_paid(inv)
        return None
    if not attempt:
        return "not_attempted"
    pm = payment_method_for(sub, pm_override)
    inv["attempted"] = True
    inv["attempt_count"] = (inv.get("attempt_count") or 0) + 1
    if not pm:
        inv["next_payment_attempt"] = None
        emit("invoice.payment_failed", inv)
        return "no_payment_method"
    behaviour = PM_BEHAVIOUR.get(pm, "ok")
    if behaviour == "authenticate" and inv["id"] in AUTHENTICATED:
        behaviour = "ok"
    if behaviour == "ok":
        inv["default_payment_method"] = None
        mark_paid(inv)
        return None
    inv["next_payment_attempt"] = None
    if behaviour == "authenticate":
        emit("invoice.payment_action_required", inv)
        emit("invoice.payment_failed", inv)
        return "authenticate"
    emit("invoice.payment_failed", inv)
    return "decline"


def mark_paid(inv: dict) -> None:
    t = now()
    inv.update(status="paid", amount_paid=inv["amount_due"], amount_remaining=0, next_payment_attempt=None)
    inv["status_transitions"]["paid_at"] = t
    emit("invoice.paid", inv)
    emit("invoice.payment_succeeded", inv)


def failure_error(outcome: str, inv: dict):
    if outcome == "authenticate":
        return err(402, "This payment requires additional user action before it can be completed "
                        "successfully. Payment can be completed using the PaymentIntent associated with "
                        "the invoice.", "invoice_payment_intent_requires_action", kind="card_error")
    if outcome == "no_payment_method":
        return err(400, "This customer has no attached payment source or default payment method. Please "
                        "consider adding a default payment method.", "resource_missing")
    return err(402, "Your card was declined.", "card_declined", kind="card_error", decline_code="generic_decline")


def emit(kind: str, obj: dict, previous=None) -> None:
    if STATE["emit"] is not None:
        STATE["emit"](kind, copy.deepcopy(obj), previous)


# ---- subscriptions -------------------------------------------------------------------------------

def expand(sub: dict, expands) -> dict:
    out = copy.deepcopy(sub)
    for path in expands or []:
        if path == "latest_invoice" and isinstance(out.get("latest_invoice"), str):
            out["latest_invoice"] = copy.deepcopy(STATE["objects"].get(out["latest_invoice"])) or out["latest_invoice"]
        if path == "customer" and isinstance(out.get("customer"), str):
            out["customer"] = copy.deepcopy(lookup_customer(out["customer"])) or out["customer"]
        if path == "schedule" and isinstance(out.get("schedule"), str):
            out["schedule"] = copy.deepcopy(STATE["objects"].get(out["schedule"])) or out["schedule"]
    return out


def expands_of(pairs) -> list:
    return [v for k, v in pairs if k == "expand[]" or (k.startswith("expand[") and k.endswith("]"))]


def create_subscription(params: dict, expands=(), paid_by_checkout=False, pm_override=None):
    """`POST /v1/subscriptions`, and the local Checkout's subscription (`paid_by_checkout`: the
    first invoice was paid on the page). Returns (status, body)."""
    customer = params.get("customer")
    if not customer:
        return err(400, "Missing required param: customer.", "parameter_missing", "customer")
    if lookup_customer(customer) is None:
        return err(400, f"No such customer: '{customer}'", "resource_missing", "customer")
    changes = indexed(params.get("items"))
    if not changes:
        return err(400, "Missing required param: items.", "parameter_missing", "items")
    start = now()
    sid = new_id("sub")
    skeleton = {"id": sid, "items": {"data": []}}
    items = []
    for n, change in enumerate(changes):
        price, problem = resolve_price(change.get("price") or change.get("plan"), f"items[{n}][price]")
        if problem:
            return problem
        items.append(new_item(sid, price, int(change.get("quantity") or 1), start, 0, change.get("metadata")))
    problem = check_items(items)
    if problem:
        return problem
    interval, count = price_interval(items[0]["price"])
    trial_end, problem = trial_end_of(params, start)
    if problem:
        return problem
    end = trial_end or add_interval(start, interval, count)
    for item in items:
        item["current_period_end"] = end
    discount_ids, problem = discounts_from_params(params.get("discounts"), customer, sid)
    if problem:
        return problem
    sub = fixture("subscription")
    sub.update(
        id=sid, object="subscription", created=start, start_date=start, billing_cycle_anchor=start,
        billing_cycle_anchor_config=None, billing_mode={"type": "classic", "flexible": None},
        billing_schedules=[], billing_thresholds=None, cancel_at=None, cancel_at_period_end=False,
        canceled_at=None, cancellation_details={"comment": None, "feedback": None, "reason": None},
        collection_method="charge_automatically", currency=items[0]["price"].get("currency"),
        customer=customer, default_payment_method=params.get("default_payment_method") or pm_override,
        ended_at=None, latest_invoice=None, livemode=False,
        metadata={k: v for k, v in (params.get("metadata") or {}).items() if v != ""},
        next_pending_invoice_item_invoice=None, pause_collection=None, pending_invoice_item_interval=None,
        pending_setup_intent=None, pending_update=None, schedule=None, status="incomplete",
        test_clock=None, transfer_data=None, trial_end=None, trial_start=None, managed_payments=None,
        items={"object": "list", "data": items, "has_more": False, "total_count": len(items),
               "url": f"/v1/subscription_items?subscription={sid}"},
        discounts=discount_ids, description=params.get("description"),
        automatic_tax={"disabled_reason": None,
                       "enabled": ((params.get("automatic_tax") or {}).get("enabled")) == "true",
                       "liability": {"type": "self"} if ((params.get("automatic_tax") or {}).get("enabled")) == "true" else None},
    )
    if trial_end:
        sub.update(trial_start=start, trial_end=trial_end, billing_cycle_anchor=trial_end)
    behaviour_at_end = (((params.get("trial_settings") or {}).get("end_behavior") or {})
                        .get("missing_payment_method")) or "create_invoice"
    sub["trial_settings"] = {"end_behavior": {"missing_payment_method": behaviour_at_end}}
    if trial_end:
        lines = [trial_line(sid, i, start, end) for i in items]
    else:
        lines = [full_line(sid, i, start, end) for i in items]
    inv = invoice_object(sub, lines, "subscription_create", (start, start))
    behaviour = params.get("payment_behavior") or "allow_incomplete"
    if paid_by_checkout:
        AUTHENTICATED.add(inv["id"])
    if behaviour == "error_if_incomplete" and not paid_by_checkout:
        pm = payment_method_for(sub)
        outcome = None if inv["amount_due"] <= 0 else (
            "no_payment_method" if not pm else
            {"ok": None}.get(PM_BEHAVIOUR.get(pm, "ok"), PM_BEHAVIOUR.get(pm)))
        if outcome:
            return failure_error(outcome, inv)
    STATE["objects"][sid] = sub
    sub["latest_invoice"] = inv["id"]
    # The first charge happens within the create call: `customer.subscription.created` already
    # shows its outcome (active, or incomplete), then the invoice's events follow.
    later, sink = [], STATE["emit"]
    STATE["emit"] = lambda kind, obj, previous=None: later.append((kind, obj, previous))
    try:
        store_invoice(inv)
        outcome = charge(inv, sub, pm_override, attempt=behaviour != "default_incomplete")
    finally:
        STATE["emit"] = sink
    sub["status"] = ("trialing" if trial_end else "active") if outcome is None else "incomplete"
    emit("customer.subscription.created", sub)
    for kind, obj, previous in later:
        emit(kind, obj, previous)
    if trial_end and trial_end - TRIAL_WILL_END_SECONDS <= start:
        # A trial of 3 days or less: Stripe sends trial_will_end at once.
        TRIAL_WILL_END_SENT.add(sid)
        emit("customer.subscription.trial_will_end", sub)
    return 200, expand(sub, expands)


def trial_end_of(params: dict, start: int):
    """The trial's end from `trial_period_days` or `trial_end` (None: no trial), or an error."""
    days, end = params.get("trial_period_days"), params.get("trial_end")
    if days not in (None, "") and end not in (None, ""):
        return None, err(400, "You may only specify one of these parameters: trial_end, trial_period_days.",
                         None, "trial_end")
    if days not in (None, ""):
        days = int(days)
        if days < 1 or days > 730:
            return None, err(400, "The number of trial period days must be between 1 and 730.", None,
                             "trial_period_days")
        return start + days * 86400, None
    if end not in (None, "") and end != "now":
        end = int(end)
        if end <= start + 1:
            return None, err(400, "Invalid timestamp: must be an integer Unix timestamp in the future.", None,
                             "trial_end")
        return end, None
    return None, None


def trial_line(sub_id, item, start, end):
    price = item["price"]
    qty = item.get("quantity") or 1
    return line(sub_id, item, 0, f"Trial period for {product_name(price)}", start, end, False)


def pending_update_refusal(form_params: dict):
    bad = [k for k in form_params if k not in PENDING_UPDATE_PARAMS]
    for n, change in enumerate(indexed(form_params.get("items"))):
        bad += [f"items[{n}][{k}]" for k in change if k not in PENDING_UPDATE_ITEM_PARAMS]
    if bad:
        return err(400, "The following parameters are not supported when payment_behavior is "
                        f"pending_if_incomplete: {', '.join(sorted(bad))}. See "
                        "https://docs.stripe.com/billing/pending-updates-reference#supported-attributes.",
                   None, bad[0])
    return None


def proration_date_of(raw, start, end, param="proration_date"):
    if raw in (None, ""):
        return max(start, min(now(), end)), None
    at = int(raw)
    if at > now() + 5:
        return None, err(400, "Proration date cannot be in the future.", None, param)
    if not start <= at <= end:
        return None, err(400, "Cannot specify proration date outside of current subscription period.",
                         None, param)
    return at, None


def plan_change(sub, params, param_prefix="", behaviour_default="create_prorations"):
    """What `items[]`, `proration_behavior` and `proration_date` would do to `sub`:
    a dict with the new items, the proration lines and the renewal period, or an error."""
    start, end = period_of(sub)
    changes = indexed(params.get("items"))
    proration = params.get("proration_behavior") or behaviour_default
    at, problem = proration_date_of(params.get("proration_date"), start, end, f"{param_prefix}proration_date")
    if problem:
        return None, problem
    outcome, problem = apply_item_changes(sub, changes, start, end, f"{param_prefix}items")
    if problem:
        return None, problem
    items, removed, added, changed = outcome
    old_interval = {price_interval(i["price"]) for i in items_of(sub)}
    new_interval = price_interval(items[0]["price"])
    interval_change = bool(items_of(sub)) and new_interval not in old_interval
    result = {"items": items, "start": start, "end": end, "at": at, "proration": proration,
              "lines": [], "interval_change": interval_change}
    if interval_change:
        # A new interval resets the billing cycle anchor: the period starts now and is invoiced at
        # once, with credit for the unused time of the old prices (when prorating).
        # Stripe: "the billing cycle anchor is reset to the time of the change" (now); the credit
        # for the unused time is taken at the proration date.
        new_start = max(at, now())
        new_end = add_interval(new_start, *new_interval)
        lines = []
        if proration != "none":
            lines += proration_lines(sub["id"], [o for o in items_of(sub)], [], [], start, end, at)
        for item in items:
            item["current_period_start"], item["current_period_end"] = new_start, new_end
        lines += [full_line(sub["id"], i, new_start, new_end) for i in items]
        result.update(lines=lines, start=new_start, end=new_end)
        return result, None
    if proration != "none":
        result["lines"] = proration_lines(sub["id"], removed, added, changed, start, end, at)
    return result, None


def update_subscription(sid: str, params: dict, expands=(), from_schedule=False):
    objects = STATE["objects"]
    sub = objects.get(sid)
    if sub is None or sub.get("object") != "subscription":
        return err(404, f"No such subscription: '{sid}'", "resource_missing", "id")
    sched = schedule_of(sub)
    if sched is not None and sched.get("status") == "active":
        # Stripe: a subscription managed by a schedule changes its cancellation through the
        # schedule (end_behavior, phases), never directly.
        for name in ("cancel_at_period_end", "cancel_at"):
            if name in params:
                return err(400, f"The subscription is managed by the subscription schedule `{sched['id']}`, and "
                                "updating any cancelation behavior directly is not allowed. Please update the "
                                "schedule instead.", None, name)
    behaviour = params.get("payment_behavior") or "allow_incomplete"
    if behaviour == "pending_if_incomplete":
        problem = pending_update_refusal(params)
        if problem:
            return problem
    if sub.get("status") in ("canceled", "incomplete_expired"):
        allowed = {"cancellation_details", "metadata", "expand"}
        if set(params) - allowed:
            return err(400, "A canceled subscription can only update its cancellation_details and metadata.")
    if sub.get("pending_update") and "items" in params:
        return err(400, "This subscription has a pending update. Pay or void its latest invoice, or let the "
                        "pending update expire, before updating its items.", None, "items")
    before = copy.deepcopy(sub)
    change = None
    if "items" in params or "proration_date" in params:
        change, problem = plan_change(sub, params)
        if problem:
            return problem
    new = copy.deepcopy(sub)
    if change is not None:
        new["items"]["data"] = change["items"]
        new["items"]["total_count"] = len(change["items"])
        if change["interval_change"]:
            new["billing_cycle_anchor"] = change["start"]
        if sched is not None and sched.get("status") == "active" and not from_schedule:
            # A direct item change of a scheduled subscription is the current phase's too.
            for phase in sched["phases"]:
                if phase["start_date"] == (sched.get("current_phase") or {}).get("start_date"):
                    phase["items"] = [schedule_phase_item(i["price"], i.get("quantity") or 1) for i in change["items"]]
    if "metadata" in params:
        meta = params["metadata"] if isinstance(params["metadata"], dict) else {}
        merged = {**(new.get("metadata") or {}), **meta}
        new["metadata"] = {k: v for k, v in merged.items() if v != ""}
    if "cancel_at_period_end" in params:
        new["cancel_at_period_end"] = params["cancel_at_period_end"] == "true"
        new["cancel_at"] = period_of(new)[1] if new["cancel_at_period_end"] else None
        new["canceled_at"] = now() if new["cancel_at_period_end"] else None
    if "default_payment_method" in params:
        new["default_payment_method"] = params["default_payment_method"] or None
    if "description" in params:
        new["description"] = params["description"] or None
    if "automatic_tax" in params:
        enabled = (params["automatic_tax"] or {}).get("enabled") == "true" if isinstance(params["automatic_tax"], dict) else False
        new["automatic_tax"] = {"disabled_reason": None, "enabled": enabled,
                                "liability": {"type": "self"} if enabled else None}
    if "discounts" in params:
        ids, problem = discounts_from_params(params["discounts"] if isinstance(params["discounts"], dict) else [],
                                             new.get("customer"), sid)
        if problem:
            return problem
        new["discounts"] = ids
    for field in ("currency",):
        new[field] = (change["items"][0]["price"].get("currency") if change else new.get(field))

    invoice = None
    if change is not None:
        if change["interval_change"] or change["proration"] == "always_invoice":
            lines = list(change["lines"])
            if change["proration"] == "always_invoice" and not change["interval_change"]:
                lines = PENDING_ITEMS.pop(sid, []) + lines
            if lines:
                invoice = invoice_object(new, lines, "subscription_update", (change["at"], change["at"]))
        elif change["proration"] == "create_prorations" and change["lines"]:
            PENDING_ITEMS.setdefault(sid, []).extend(change["lines"])

    if invoice is None:
        return commit(sid, before, new, expands)

    pm = payment_method_for(new)
    if behaviour == "error_if_incomplete" and invoice["amount_due"] > 0:
        would = "no_payment_method" if not pm else PM_BEHAVIOUR.get(pm, "ok")
        if would != "ok":
            return failure_error(would, invoice)
    if behaviour == "pending_if_incomplete":
        store_invoice(invoice)
        outcome = charge(invoice, new)
        if outcome is None:
            new["latest_invoice"] = invoice["id"]
            return commit(sid, before, new, expands)
        pending = copy.deepcopy(before)
        pending["latest_invoice"] = invoice["id"]
        pending["pending_update"] = {
            "billing_cycle_anchor": change["start"] if change["interval_change"] else None,
            "expires_at": now() + PENDING_UPDATE_SECONDS, "subscription_items": new["items"]["data"],
            "trial_end": None, "trial_from_plan": None, "discounts": None, "metadata": None}
        PENDING_FOR[invoice["id"]] = sid
        return commit(sid, before, pending, expands)
    store_invoice(invoice)
    new["latest_invoice"] = invoice["id"]
    outcome = charge(invoice, new, attempt=behaviour != "default_incomplete")
    if outcome is not None:
        new["status"] = "past_due"
    elif new.get("status") == "past_due":
        new["status"] = "active"
    return commit(sid, before, new, expands)


def changed_fields(before: dict, after: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in before.items() if after.get(k) != v}


def commit(sid, before, new, expands):
    STATE["objects"][sid] = new
    previous = changed_fields(before, new)
    if previous:
        emit("customer.subscription.updated", new, previous)
    return 200, expand(new, expands)


def cancel_subscription(sid: str, expands=()):
    sub = STATE["objects"].get(sid)
    if sub is None or sub.get("object") != "subscription":
        return err(404, f"No such subscription: '{sid}'", "resource_missing", "id")
    if sub.get("status") == "canceled":
        return err(400, f"This subscription is already canceled: '{sid}'.", None)
    t = now()
    sched = schedule_of(sub)
    if sched is not None and sched.get("status") == "active":
        sched.update(status="canceled", canceled_at=t, current_phase=None)
        emit("subscription_schedule.canceled", sched)
    sub.update(status="canceled", canceled_at=t, ended_at=t, pending_update=None)
    PENDING_ITEMS.pop(sid, None)
    emit("customer.subscription.deleted", sub)
    return 200, expand(sub, expands)


# ---- the clock: what happens as time passes (trials, renewals) -----------------------------------

def due_times(sub: dict) -> list:
    """(when, order, what) this subscription has coming: trial_will_end 3 days before its trial
    ends, the trial's end, the period's end (a renewal, or the end of a subscription set to
    cancel at period end)."""
    status = sub.get("status")
    sid = sub["id"]
    if status == "trialing" and sub.get("trial_end"):
        due = []
        if sid not in TRIAL_WILL_END_SENT:
            due.append((sub["trial_end"] - TRIAL_WILL_END_SECONDS, 0, "trial_will_end"))
        due.append((sub["trial_end"], 1, "trial_end"))
        return due
    if status in ("active", "past_due", "unpaid"):
        _, end = period_of(sub)
        if end:
            return [(end, 2, "period_end")]
    return []


def advance(target: int, timers=None) -> list:
    """Moves the clock to `target`, doing in time order what falls due on the way (as Stripe's
    test clocks do): subscriptions' trial_will_end, trial ends and renewals, and the extra
    `timers()` of the caller ([(when, key, action)], e.g. Checkout Sessions expiring). Returns
    what happened, [(when, what, id)]."""
    done = []
    while True:
        due = []
        for obj in list(STATE["objects"].values()):
            if obj.get("object") == "subscription":
                due += [(at, order, obj["id"], what) for at, order, what in due_times(obj) if at <= target]
        extra = {}
        for at, key, action in (timers() if timers else []):
            if at <= target:
                due.append((at, 3, key, "timer"))
                extra[key] = action
        if not due:
            break
        at, _, oid, what = min(due)
        set_now(at)
        if what == "timer":
            extra[oid]()
        elif what == "trial_will_end":
            TRIAL_WILL_END_SENT.add(oid)
            emit("customer.subscription.trial_will_end", STATE["objects"][oid])
        elif what == "trial_end":
            end_trial(oid, at)
        else:
            renew(oid, at)
        done.append((at, what, oid))
    set_now(target)
    return done


def end_trial(sid: str, at: int) -> None:
    """The trial is over: with a payment method the first paid period starts and is invoiced;
    without one, `trial_settings.end_behavior.missing_payment_method` says: `cancel` cancels,
    `pause` pauses, `create_invoice` invoices (the invoice stays open, the subscription
    past_due) (docs.stripe.com/billing/subscriptions/trials/free-trials)."""
    sub = STATE["objects"][sid]
    behaviour = ((sub.get("trial_settings") or {}).get("end_behavior") or {}).get("missing_payment_method") \
        or "create_invoice"
    if not payment_method_for(sub):
        if behaviour == "cancel":
            before = copy.deepcopy(sub)
            sub.update(status="canceled", canceled_at=at, ended_at=at, pending_update=None)
            sub["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}
            PENDING_ITEMS.pop(sid, None)
            emit("customer.subscription.deleted", sub, changed_fields(before, sub))
            return
        if behaviour == "pause":
            before = copy.deepcopy(sub)
            sub["status"] = "paused"
            emit("customer.subscription.paused", sub)
            emit("customer.subscription.updated", sub, changed_fields(before, sub))
            return
    renew(sid, at, from_trial=True)


def renew(sid: str, at: int, from_trial: bool = False) -> None:
    """The period ends at `at`: a subscription set to cancel at period end ends; otherwise a new
    period begins and its invoice (the items at full price, pending prorations, discounts, tax)
    is finalized and charged at once (Stripe leaves it a draft for about an hour first) to the
    default payment method; a failed charge leaves the subscription past_due."""
    objects = STATE["objects"]
    sub = objects[sid]
    before = copy.deepcopy(sub)
    if phase_transition(sub, at):
        sub.update(status="canceled", ended_at=at, canceled_at=at, cancel_at=None)
        PENDING_ITEMS.pop(sid, None)
        emit("customer.subscription.deleted", sub, changed_fields(before, sub))
        return
    if sub.get("cancel_at_period_end") and not from_trial:
        sub.update(status="canceled", ended_at=at, canceled_at=sub.get("canceled_at") or at)
        PENDING_ITEMS.pop(sid, None)
        emit("customer.subscription.deleted", sub, changed_fields(before, sub))
        return
    start, _ = period_of(sub)
    items = items_of(sub)
    interval = price_interval(items[0]["price"])
    anchor = datetime.datetime.fromtimestamp(sub.get("billing_cycle_anchor") or at, datetime.timezone.utc).day
    end = add_interval(at, *interval, anchor_day=anchor)
    for item in items:
        item["current_period_start"], item["current_period_end"] = at, end
    if from_trial:
        sub["status"] = "active"
    lines = PENDING_ITEMS.pop(sid, []) + [full_line(sid, i, at, end) for i in items]
    inv = invoice_object(sub, lines, "subscription_cycle", (start, at))
    sub["latest_invoice"] = inv["id"]
    emit("customer.subscription.updated", sub, changed_fields(before, sub))
    store_invoice(inv)
    outcome = charge(inv, sub)
    if outcome is not None and sub.get("status") != "past_due":
        again = copy.deepcopy(sub)
        sub["status"] = "past_due"
        emit("customer.subscription.updated", sub, changed_fields(again, sub))
    elif outcome is None and sub.get("status") == "past_due":
        again = copy.deepcopy(sub)
        sub["status"] = "active"
        emit("customer.subscription.updated", sub, changed_fields(again, sub))


def pay_invoice(iid: str, params: dict, expands=()):
    objects = STATE["objects"]
    inv = objects.get(iid)
    if inv is None or inv.get("object") != "invoice":
        return err(404, f"No such invoice: '{iid}'", "resource_missing", "id")
    if inv.get("status") == "paid":
        return err(400, "Invoice is already paid", None)
    if inv.get("status") != "open":
        return err(400, f"You can only pay an open invoice. This invoice is {inv.get('status')}.", None)
    sid = inv.get("subscription") or ((inv.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    sub = objects.get(sid) or {"customer": inv.get("customer")}
    if params.get("paid_out_of_band") == "true":
        mark_paid(inv)
        outcome = None
    else:
        outcome = charge(inv, sub, params.get("payment_method"))
    if outcome is not None:
        return failure_error(outcome, inv)
    after_paid(inv)
    return 200, strip(inv)


def after_paid(inv: dict) -> None:
    """An invoice paid: its subscription's pending update is applied, an incomplete or past_due
    subscription becomes active."""
    objects = STATE["objects"]
    sid = inv.get("subscription")
    sub = objects.get(sid)
    if sub is None:
        return
    before = copy.deepcopy(sub)
    new = copy.deepcopy(sub)
    if PENDING_FOR.pop(inv["id"], None) and sub.get("pending_update") and sub.get("latest_invoice") == inv["id"]:
        update = sub["pending_update"]
        new["items"]["data"] = update["subscription_items"]
        new["items"]["total_count"] = len(update["subscription_items"])
        if update.get("billing_cycle_anchor"):
            new["billing_cycle_anchor"] = update["billing_cycle_anchor"]
        new["pending_update"] = None
        objects[sid] = new
        emit("customer.subscription.pending_update_applied", new, changed_fields(before, new))
    if new.get("status") in ("incomplete", "past_due", "unpaid") and new.get("latest_invoice") == inv["id"]:
        new["status"] = "active"
    commit(sid, before, new, ())


def strip(inv: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in inv.items() if not k.startswith("_")}


def authenticate(iid: str):
    """The buyer completed 3-D Secure for this invoice (the hosted invoice page, or a test)."""
    inv = STATE["objects"].get(iid)
    if inv is None or inv.get("object") != "invoice":
        return err(404, f"No such invoice: '{iid}'", "resource_missing", "id")
    AUTHENTICATED.add(iid)
    if inv.get("status") != "open":
        return 200, strip(inv)
    return pay_invoice(iid, {})


def preview(params: dict, expands=()):
    """`POST /v1/invoices/create_preview`."""
    objects = STATE["objects"]
    details = params.get("subscription_details") or {}
    sid = params.get("subscription")
    # Stripe's reference of `subscription_details.proration_date`: "If set, `subscription`, and
    # one of `subscription_details.items`, or `subscription_details.trial_end` are required.
    # Also, `subscription_details.proration_behavior` cannot be set to 'none'."
    if "proration_date" in details:
        if details.get("proration_behavior") == "none":
            return err(400, "`subscription_details[proration_behavior]` cannot be `none` when "
                            "`subscription_details[proration_date]` is set.", None,
                       "subscription_details[proration_behavior]")
        if not sid or not (details.get("items") or details.get("trial_end")):
            return err(400, "`subscription_details[proration_date]` requires `subscription` and "
                            "`subscription_details[items]` or `subscription_details[trial_end]`.",
                       None, "subscription_details[proration_date]")
    if sid:
        sub = objects.get(sid)
        if sub is None or sub.get("object") != "subscription":
            return err(400, f"No such subscription: '{sid}'", "resource_missing", "subscription")
        if params.get("customer") and params["customer"] != sub.get("customer"):
            return err(400, "The subscription does not belong to the customer.", None, "customer")
        change, problem = plan_change(sub, details, "subscription_details[")
        if problem:
            return fix_param(problem)
        start, end = change["start"], change["end"]
        items = change["items"]
        shape = dict(sub, items={"data": items})
        if "automatic_tax" in params:
            shape["automatic_tax"] = {"enabled": (params.get("automatic_tax") or {}).get("enabled") == "true"}
        if change["interval_change"]:
            inv = invoice_object(shape, change["lines"], "subscription_update", (change["at"], change["at"]), True)
        elif change["proration"] == "always_invoice":
            lines = PENDING_ITEMS.get(sid, []) + change["lines"]
            lines = [dict(copy.deepcopy(l), id=new_id("il")) for l in lines]
            inv = invoice_object(shape, lines, "subscription_update", (change["at"], change["at"]), True)
        else:
            interval = price_interval(items[0]["price"])
            renew_end = add_interval(end, *interval)
            lines = [full_line(sid, i, end, renew_end) for i in items]
            if change["proration"] == "create_prorations":
                lines = [copy.deepcopy(l) for l in PENDING_ITEMS.get(sid, [])] + change["lines"] + lines
            inv = invoice_object(shape, lines, "upcoming", (start, end), True)
            inv["next_payment_attempt"] = end
            inv["automatically_finalizes_at"] = end + 3600
        return 200, inv
    customer = params.get("customer")
    if not customer:
        return err(400, "Missing required param: customer.", "parameter_missing", "customer")
    changes = indexed(details.get("items"))
    if not changes:
        return err(400, "You must specify at least one of `subscription`, `subscription_details[items]`, "
                        "`schedule` or `invoice_items`.", None, "subscription_details[items]")
    start = now()
    sub = {"id": None, "customer": customer, "metadata": details.get("metadata") or {},
           "automatic_tax": {"enabled": (params.get("automatic_tax") or {}).get("enabled") == "true"}}
    items = []
    for n, change in enumerate(changes):
        if change.get("id") or change.get("deleted"):
            return err(400, "Items of a new subscription cannot have an id.", None,
                       f"subscription_details[items][{n}][id]")
        price, problem = resolve_price(change.get("price") or change.get("plan"),
                                       f"subscription_details[items][{n}][price]")
        if problem:
            return problem
        items.append(new_item(None, price, int(change.get("quantity") or 1), start, 0))
    problem = check_items(items, "subscription_details[items]")
    if problem:
        return problem
    end = add_interval(start, *price_interval(items[0]["price"]))
    for i in items:
        i["current_period_end"] = end
    inv = invoice_object(sub, [full_line(None, i, start, end) for i in items], "subscription_create",
                         (start, start), True)
    inv["subscription"] = None
    return 200, inv


def fix_param(problem):
    status, body = problem
    param = body["error"].get("param")
    if param and param.startswith("subscription_details[") and not param.startswith("subscription_details[items"):
        body["error"]["param"] = param + "]" if not param.endswith("]") else param
    elif param and param.startswith("subscription_details[items"):
        body["error"]["param"] = "subscription_details[items]" + param[len("subscription_details[items"):]
    return status, body


# ---- subscription items --------------------------------------------------------------------------

def find_item(iid: str):
    for obj in STATE["objects"].values():
        if obj.get("object") == "subscription":
            for item in items_of(obj):
                if item["id"] == iid:
                    return obj, item
    return None, None


def item_call(method: str, path: str, params: dict, query: dict, expands=()):
    """`/v1/subscription_items[/{id}]`: the same changes as `POST /v1/subscriptions/{id}` with
    one `items[]` entry."""
    rest = path[len("/v1/subscription_items"):].strip("/")
    if not rest:
        if method == "GET":
            sid = query.get("subscription")
            if not sid:
                return err(400, "Missing required param: subscription.", "parameter_missing", "subscription")
            sub = STATE["objects"].get(sid)
            if sub is None:
                return err(400, f"No such subscription: '{sid}'", "resource_missing", "subscription")
            return 200, {"object": "list", "data": items_of(sub), "has_more": False, "url": path}
        sid = params.get("subscription")
        if not sid:
            return err(400, "Missing required param: subscription.", "parameter_missing", "subscription")
        change = {k: params[k] for k in ("price", "quantity", "metadata") if k in params}
        forward = {k: v for k, v in params.items() if k in ("payment_behavior", "proration_behavior", "proration_date")}
        before = {i["id"] for i in items_of(STATE["objects"].get(sid) or {})}
        status, body = update_subscription(sid, dict(forward, items={"0": change}))
        if status != 200:
            return status, body
        fresh = [i for i in items_of(STATE["objects"][sid]) if i["id"] not in before]
        return 200, fresh[0] if fresh else body
    sub, item = find_item(rest)
    if item is None:
        return err(404, f"No such subscription item: '{rest}'", "resource_missing", "id")
    if method == "GET":
        return 200, copy.deepcopy(item)
    forward = {k: v for k, v in params.items() if k in ("payment_behavior", "proration_behavior", "proration_date")}
    if method == "DELETE":
        status, body = update_subscription(sub["id"], dict(forward, items={"0": {"id": rest, "deleted": "true"}}))
        return (200, {"id": rest, "object": "subscription_item", "deleted": True}) if status == 200 else (status, body)
    change = {"id": rest, **{k: params[k] for k in ("price", "quantity", "metadata") if k in params}}
    status, body = update_subscription(sub["id"], dict(forward, items={"0": change}))
    if status != 200:
        return status, body
    _, fresh = find_item(rest)
    return 200, copy.deepcopy(fresh)


def route(method: str, path: str, params: dict, query: dict, pairs: list):
    """(status, body) for the billing endpoints, None for any other path."""
    expands = expands_of(pairs)
    if path == "/v1/subscriptions" and method == "POST":
        return create_subscription(params, expands)
    if path.startswith("/v1/subscriptions/") and path.count("/") == 3:
        sid = path.rsplit("/", 1)[1]
        if method == "POST":
            return update_subscription(sid, {k: v for k, v in params.items() if k != "expand"}, expands)
        if method == "DELETE":
            return cancel_subscription(sid, expands)
        if method == "GET":
            sub = STATE["objects"].get(sid)
            if sub is None or sub.get("object") != "subscription":
                return None
            return 200, expand(sub, expands)
    if path.startswith("/v1/subscription_items"):
        return item_call(method, path, params, query, expands)
    if path.startswith("/v1/subscription_schedules"):
        return schedule_call(method, path, params, query, expands)
    if path == "/v1/invoices/create_preview" and method == "POST":
        return preview(params, expands)
    if path.startswith("/v1/invoices/") and path.endswith("/pay") and method == "POST":
        return pay_invoice(path[len("/v1/invoices/"):-len("/pay")], params, expands)
    if path.startswith("/v1/invoices/") and path.count("/") == 3 and method == "GET":
        inv = STATE["objects"].get(path.rsplit("/", 1)[1])
        if inv is None or inv.get("object") != "invoice":
            return None
        return 200, strip(inv)
    return None


# ---- subscription schedules ----------------------------------------------------------------------
#
# docs.stripe.com/api/subscription_schedules: `from_subscription` makes a schedule of one phase, the
# subscription's current period ("a subscription schedule will be created using the subscription's
# item(s), set to auto-renew using the subscription's interval. When using this parameter, other
# parameters (such as phase values) cannot be set"); updating it replaces its phases from the current
# one on ("past phases can be omitted"; "the end_date of one phase will always equal the start_date
# of the next phase"); at the end of a phase the next one's items become the subscription's; at the
# end of the last phase `end_behavior` says: `release` keeps the subscription running (the schedule
# `released`), `cancel` cancels it (the schedule `completed`); "Releases the subscription schedule
# immediately, which will stop scheduling of its phases, but leave any existing subscription in
# place ... releasing it will remove its subscription property and set the subscription's ID to the
# released_subscription property".
#
# Fixture limits: phases change the subscription only at the end of a billing period (the current
# phase must end at the current period's end, later phases last whole intervals of their prices);
# classic billing mode (one interval per phase).

def schedule_phase_item(price: dict, quantity: int) -> dict:
    return {"billing_thresholds": None, "discounts": [], "metadata": {}, "plan": price["id"],
            "price": price["id"], "quantity": quantity, "tax_rates": []}


def schedule_phase(start: int, end: int, items: list, currency: str, trial_end=None,
                   proration_behavior="create_prorations") -> dict:
    return {"add_invoice_items": [], "application_fee_percent": None, "automatic_tax": None,
            "billing_cycle_anchor": None, "billing_thresholds": None, "collection_method": None,
            "currency": currency, "default_payment_method": None, "default_tax_rates": [],
            "description": None, "discounts": [], "end_date": end, "invoice_settings": None,
            "items": items, "metadata": {}, "on_behalf_of": None,
            "proration_behavior": proration_behavior, "start_date": start, "transfer_data": None,
            "trial_end": trial_end}


def schedule_of(sub: dict):
    sched = STATE["objects"].get(sub.get("schedule") or "")
    return sched if sched and sched.get("object") == "subscription_schedule" else None


def create_schedule(params: dict, expands=()):
    """`POST /v1/subscription_schedules` (only `from_subscription` here)."""
    sid = params.get("from_subscription")
    if not sid:
        if not params.get("customer"):
            return err(400, "Missing required param: from_subscription.", "parameter_missing", "from_subscription")
        return err(400, "The fixture Stripe creates schedules from a subscription only (`from_subscription`).",
                   None, "customer")
    others = [k for k in params if k not in ("from_subscription", "expand")]
    if others:
        name = sorted(others)[0]
        return err(400, f"You cannot set `{name}` if `from_subscription` is set. Create the schedule from the "
                        "subscription first, then update the schedule.", None, name)
    sub = STATE["objects"].get(sid)
    if sub is None or sub.get("object") != "subscription":
        return err(400, f"No such subscription: '{sid}'", "resource_missing", "from_subscription")
    if sub.get("status") in ("canceled", "incomplete_expired"):
        return err(400, f"You cannot create a subscription schedule from a subscription with status "
                        f"`{sub['status']}`.", None, "from_subscription")
    if sub.get("schedule"):
        return err(400, f"The subscription `{sid}` is already attached to the subscription schedule "
                        f"`{sub['schedule']}`.", None, "from_subscription")
    t = now()
    start, end = period_of(sub)
    items = [schedule_phase_item(i["price"], i.get("quantity") or 1) for i in items_of(sub)]
    trial_end = sub.get("trial_end") if sub.get("status") == "trialing" else None
    # A subscription set to cancel at its period end: the schedule's one phase ends then and the
    # schedule cancels it (end_behavior `cancel`), the subscription itself no longer set to cancel.
    cancels = bool(sub.get("cancel_at_period_end"))
    phase = schedule_phase(start, end, items, sub.get("currency") or items_of(sub)[0]["price"].get("currency"),
                           trial_end)
    sched = {"id": new_id("sub_sched"), "object": "subscription_schedule", "application": None,
             "billing_mode": {"type": (sub.get("billing_mode") or {}).get("type") or "classic", "flexible": None},
             "canceled_at": None, "completed_at": None, "created": t,
             "current_phase": {"end_date": end, "start_date": start},
             "customer": sub.get("customer"), "customer_account": None,
             "default_settings": {"application_fee_percent": None,
                                  "automatic_tax": {"disabled_reason": None,
                                                    "enabled": bool((sub.get("automatic_tax") or {}).get("enabled")),
                                                    "liability": (sub.get("automatic_tax") or {}).get("liability")},
                                  "billing_cycle_anchor": "automatic", "billing_thresholds": None,
                                  "collection_method": "charge_automatically",
                                  "default_payment_method": sub.get("default_payment_method"),
                                  "description": None,
                                  "invoice_settings": {"account_tax_ids": None, "days_until_due": None,
                                                       "issuer": {"type": "self"}},
                                  "on_behalf_of": None, "transfer_data": None},
             "end_behavior": "cancel" if cancels else "release", "livemode": False, "metadata": {},
             "phases": [phase], "released_at": None, "released_subscription": None, "status": "active",
             "subscription": sid, "test_clock": None}
    STATE["objects"][sched["id"]] = sched
    before = copy.deepcopy(sub)
    sub["schedule"] = sched["id"]
    if cancels:
        sub.update(cancel_at_period_end=False, cancel_at=end)
    emit("subscription_schedule.created", sched)
    emit("customer.subscription.updated", sub, changed_fields(before, sub))
    return 200, expand_schedule(sched, expands)


def expand_schedule(sched: dict, expands) -> dict:
    out = copy.deepcopy(sched)
    for path in expands or []:
        if path == "subscription" and isinstance(out.get("subscription"), str):
            out["subscription"] = copy.deepcopy(STATE["objects"].get(out["subscription"])) or out["subscription"]
        if path == "customer" and isinstance(out.get("customer"), str):
            out["customer"] = copy.deepcopy(lookup_customer(out["customer"])) or out["customer"]
    return out


def timestamp_param(raw, param):
    if raw in (None, ""):
        return None, None
    if raw == "now":
        return now(), None
    try:
        return int(raw), None
    except ValueError:
        return None, err(400, f"Invalid timestamp: must be an integer Unix timestamp or `now`.", None, param)


def update_schedule(sched_id: str, params: dict, expands=()):
    """`POST /v1/subscription_schedules/{id}`: end_behavior, metadata, and the phases from the
    current one on."""
    objects = STATE["objects"]
    sched = objects.get(sched_id)
    if sched is None or sched.get("object") != "subscription_schedule":
        return err(404, f"No such subscription_schedule: '{sched_id}'", "resource_missing", "id")
    if sched.get("status") not in ("active", "not_started"):
        return err(400, f"You cannot update a subscription schedule that is `{sched['status']}`.", None)
    sub = objects.get(sched.get("subscription")) or {}
    before = copy.deepcopy(sched)
    new_phases = None
    proration = params.get("proration_behavior") or "create_prorations"
    if "phases" in params:
        new_phases, problem = read_phases(sched, sub, indexed(params.get("phases")))
        if problem:
            return problem
    if params.get("end_behavior"):
        if params["end_behavior"] not in ("cancel", "release"):
            return err(400, "The fixture Stripe ends schedules with `release` or `cancel` only.", None, "end_behavior")
        sched["end_behavior"] = params["end_behavior"]
    if isinstance(params.get("metadata"), dict):
        merged = {**(sched.get("metadata") or {}), **params["metadata"]}
        sched["metadata"] = {k: v for k, v in merged.items() if v != ""}
    if new_phases is not None:
        past, current, later = new_phases
        # The current phase's items differ from the subscription's: the subscription changes now.
        wanted = {(i["price"], i["quantity"]) for i in current["items"]}
        held = {(i["price"]["id"], i.get("quantity") or 1) for i in items_of(sub)}
        if sub and wanted != held:
            changes, by_price = {}, {i["price"]["id"]: i for i in items_of(sub)}
            n = 0
            for i in current["items"]:
                old = by_price.pop(i["price"], None)
                changes[str(n)] = ({"id": old["id"], "quantity": str(i["quantity"])} if old else
                                   {"price": i["price"], "quantity": str(i["quantity"])})
                n += 1
            for old in by_price.values():
                changes[str(n)] = {"id": old["id"], "deleted": "true"}
                n += 1
            status, body = update_subscription(sub["id"], {"items": changes, "proration_behavior": proration},
                                               from_schedule=True)
            if status != 200:
                return status, body
        sched["phases"] = past + [current] + later
        sched["current_phase"] = {"end_date": current["end_date"], "start_date": current["start_date"]}
    previous = changed_fields(before, sched)
    emit("subscription_schedule.updated", sched, previous)
    return 200, expand_schedule(sched, expands)


def read_phases(sched: dict, sub: dict, given: list):
    """The phases of an update as (past phases kept, the current phase, later phases), or an error."""
    if not given:
        return None, err(400, "A subscription schedule must have at least one phase.", None, "phases")
    stored = sched.get("phases") or []
    cur = sched.get("current_phase") or {}
    cur_start = cur.get("start_date")
    past_stored = [p for p in stored if p["end_date"] <= (cur_start or 0)]
    _, period_end = period_of(sub) if sub else (0, 0)
    anchor = datetime.datetime.fromtimestamp(sub.get("billing_cycle_anchor") or now(), datetime.timezone.utc).day \
        if sub else None
    out, prev_end = [], None
    for n, raw in enumerate(given):
        here = f"phases[{n}]"
        start, problem = timestamp_param(raw.get("start_date"), f"{here}[start_date]")
        if problem:
            return None, problem
        if n == 0 and start is None:
            return None, err(400, "Missing required param: phases[0][start_date].", "parameter_missing",
                             "phases[0][start_date]")
        if n > 0:
            if start is not None and start != prev_end:
                return None, err(400, f"The start_date of phase {n} must equal the end_date of phase {n - 1}: "
                                      "phases must be contiguous.", None, f"{here}[start_date]")
            start = prev_end
        entries = indexed(raw.get("items"))
        if not entries:
            return None, err(400, f"Missing required param: {here}[items].", "parameter_missing", f"{here}[items]")
        items, prices = [], []
        for m, entry in enumerate(entries):
            price, problem = resolve_price(entry.get("price") or entry.get("plan"), f"{here}[items][{m}][price]")
            if problem:
                return None, problem
            qty = int(entry.get("quantity") or 1)
            prices.append(new_item(None, price, qty, 0, 0))
            items.append(schedule_phase_item(price, qty))
        problem = check_items(prices, f"{here}[items]")
        if problem:
            return None, problem
        end, problem = timestamp_param(raw.get("end_date"), f"{here}[end_date]")
        if problem:
            return None, problem
        duration = raw.get("duration") if isinstance(raw.get("duration"), dict) else None
        if end is not None and duration:
            return None, err(400, f"You may only specify one of these parameters: {here}[duration], "
                                  f"{here}[end_date].", None, f"{here}[duration]")
        if duration:
            if not duration.get("interval"):
                return None, err(400, f"Missing required param: {here}[duration][interval].", "parameter_missing",
                                 f"{here}[duration][interval]")
            end = add_interval(start, duration["interval"], int(duration.get("interval_count") or 1), anchor)
        elif end is None:
            # Neither: the phase lasts one interval of its prices.
            end = add_interval(start, *price_interval(prices[0]["price"]), anchor_day=anchor)
        if end <= start:
            return None, err(400, f"The end_date of phase {n} must be after its start_date.", None, f"{here}[end_date]")
        trial_end, problem = timestamp_param(raw.get("trial_end"), f"{here}[trial_end]")
        if problem:
            return None, problem
        phase = schedule_phase(start, end, items, prices[0]["price"].get("currency"), trial_end,
                               raw.get("proration_behavior") or "create_prorations")
        out.append(phase)
        prev_end = end
    # Which given phase is the current one: the first one that has not ended.
    first = out[0]
    if first["start_date"] != cur_start:
        match = next((p for p in past_stored if p["start_date"] == first["start_date"]), None)
        if match is None:
            return None, err(400, "You can not modify the start date of the current phase.", None,
                             "phases[0][start_date]")
    past, current, later = [], None, []
    for n, phase in enumerate(out):
        if current is None and phase["end_date"] <= (cur_start or 0):
            stored_phase = next((p for p in past_stored if p["start_date"] == phase["start_date"]), None)
            same = stored_phase is not None and stored_phase["end_date"] == phase["end_date"] and \
                [(i["price"], i["quantity"]) for i in stored_phase["items"]] == \
                [(i["price"], i["quantity"]) for i in phase["items"]]
            if not same:
                return None, err(400, "You can not modify a phase that has already ended.", None, f"phases[{n}]")
            past.append(stored_phase)
        elif current is None:
            if phase["start_date"] != cur_start:
                return None, err(400, "You can not modify the start date of the current phase.", None,
                                 f"phases[{n}][start_date]")
            if phase["end_date"] <= now():
                return None, err(400, "The end_date of the current phase must be in the future.", None,
                                 f"phases[{n}][end_date]")
            if sub and phase["end_date"] != period_end:
                return None, err(400, "The fixture Stripe ends the current phase only at the end of the current "
                                      "billing period (the current period's end).", None, f"phases[{n}][end_date]")
            current = phase
        else:
            later.append(phase)
    if current is None:
        return None, err(400, "The phases must include the current phase.", None, "phases")
    return (past, current, later), None


def release_schedule(sched_id: str, expands=(), at=None):
    """`POST /v1/subscription_schedules/{id}/release`."""
    objects = STATE["objects"]
    sched = objects.get(sched_id)
    if sched is None or sched.get("object") != "subscription_schedule":
        return err(404, f"No such subscription_schedule: '{sched_id}'", "resource_missing", "id")
    if sched.get("status") not in ("active", "not_started"):
        return err(400, f"You cannot release a subscription schedule that is currently in the `{sched['status']}` "
                        "status. It must be in one of the following statuses: `not_started`, `active`.", None)
    sid = sched.get("subscription")
    sched.update(status="released", released_at=at or now(), released_subscription=sid, subscription=None,
                 current_phase=None)
    emit("subscription_schedule.released", sched)
    sub = objects.get(sid)
    if sub is not None and at is None:
        before = copy.deepcopy(sub)
        sub["schedule"] = None
        emit("customer.subscription.updated", sub, changed_fields(before, sub))
    elif sub is not None:
        sub["schedule"] = None
    return 200, expand_schedule(sched, expands)


def cancel_schedule(sched_id: str, expands=()):
    """`POST /v1/subscription_schedules/{id}/cancel`: the schedule and its subscription end now."""
    sched = STATE["objects"].get(sched_id)
    if sched is None or sched.get("object") != "subscription_schedule":
        return err(404, f"No such subscription_schedule: '{sched_id}'", "resource_missing", "id")
    if sched.get("status") not in ("active", "not_started"):
        return err(400, f"You cannot cancel a subscription schedule that is `{sched['status']}`.", None)
    sid = sched.get("subscription")
    sched.update(status="canceled", canceled_at=now(), current_phase=None)
    emit("subscription_schedule.canceled", sched)
    if sid in STATE["objects"]:
        STATE["objects"][sid]["schedule"] = None
        cancel_subscription(sid)
    return 200, expand_schedule(sched, expands)


def phase_transition(sub: dict, at: int) -> bool:
    """At `at` the subscription's period ends: its schedule's current phase ends too; the next
    phase's items become the subscription's, or the last phase's end releases (or cancels)
    it. Returns True when the subscription is to be canceled now (end_behavior `cancel`)."""
    sched = schedule_of(sub)
    if sched is None or sched.get("status") != "active":
        return False
    cur = sched.get("current_phase") or {}
    if not cur.get("end_date") or cur["end_date"] > at:
        return False
    later = [p for p in sched["phases"] if p["start_date"] >= cur["end_date"]]
    if not later:
        if sched.get("end_behavior") == "cancel":
            sched.update(status="completed", completed_at=at, current_phase=None)
            sub["schedule"] = None
            emit("subscription_schedule.completed", sched)
            return True
        release_schedule(sched["id"], at=at)
        return False
    nxt = later[0]
    by_price = {i["price"]["id"]: i for i in items_of(sub)}
    items = []
    for entry in nxt["items"]:
        old = by_price.get(entry["price"])
        if old is not None:
            item = copy.deepcopy(old)
            item["quantity"] = entry["quantity"]
        else:
            price = price_object(entry["price"])
            item = new_item(sub["id"], price, entry["quantity"], at, 0)
        items.append(item)
    old_interval = {price_interval(i["price"]) for i in items_of(sub)}
    sub["items"]["data"] = items
    sub["items"]["total_count"] = len(items)
    if price_interval(items[0]["price"]) not in old_interval:
        sub["billing_cycle_anchor"] = at
    before = copy.deepcopy(sched)
    sched["current_phase"] = {"end_date": nxt["end_date"], "start_date": nxt["start_date"]}
    emit("subscription_schedule.updated", sched, changed_fields(before, sched))
    return False


def schedule_call(method: str, path: str, params: dict, query: dict, expands=()):
    rest = path[len("/v1/subscription_schedules"):].strip("/")
    if not rest:
        if method == "POST":
            return create_schedule(params, expands)
        return None  # the list: fake_stripe's query_list
    parts = rest.split("/")
    if len(parts) == 2 and method == "POST" and parts[1] == "release":
        return release_schedule(parts[0], expands)
    if len(parts) == 2 and method == "POST" and parts[1] == "cancel":
        return cancel_schedule(parts[0], expands)
    if len(parts) == 1:
        if method == "GET":
            sched = STATE["objects"].get(parts[0])
            if sched is None or sched.get("object") != "subscription_schedule":
                return err(404, f"No such subscription_schedule: '{parts[0]}'", "resource_missing", "id")
            return 200, expand_schedule(sched, expands)
        if method == "POST":
            return update_schedule(parts[0], params, expands)
    return None
