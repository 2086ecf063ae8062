"""The fixture Stripe's subscriptions, items, invoices, prorations and previews against Stripe's
documented behaviour and numbers. Each test starts from `/_test/reset` on a fixture Stripe started
here on a free port; the local Checkout test also starts localstripe (the local stack's upstream).
Expected amounts are worked out by hand in each test, never by the double's own code.

Run: .venv/bin/python -m unittest tests/emulators/test_fake_stripe_billing.py
"""
import calendar
import datetime
import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
DAY = 86400
KEY = "sk_test_billing_double"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def start_fake(upstream=None):
    port = free_port()
    args = [os.path.join(VENV_BIN, "python") if os.path.exists(os.path.join(VENV_BIN, "python")) else sys.executable,
            os.path.join(HERE, "fake_stripe.py"), "--port", str(port)]
    if upstream:
        args += ["--upstream", upstream]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/_test/requests")
    return proc, url


class Client:
    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, params=None, key=None, idempotency=None):
        data = urllib.parse.urlencode(params or [], doseq=True).encode() if params else b""
        url = self.base + path
        if method == "GET" and data:
            url += "?" + data.decode()
            data = b""
        headers = {"Authorization": f"Bearer {key or KEY}", "Content-Type": "application/x-www-form-urlencoded"}
        if idempotency:
            headers["Idempotency-Key"] = idempotency
        request = urllib.request.Request(url, data=data if method != "GET" else None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as err:
            body = err.read()
            try:
                return err.code, json.loads(body)
            except ValueError:
                return err.code, body.decode()

    def ok(self, method, path, params=None, **kw):
        status, body = self.call(method, path, params, **kw)
        assert status == 200, f"{method} {path}: {status} {body}"
        return body

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read() or b"null")

    def form(self, path, fields):
        """A browser's form post to a hosted page: (status, location or body)."""
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None
        opener = urllib.request.build_opener(NoRedirect)
        request = urllib.request.Request(self.base + path if path.startswith("/") else path,
                                         data=urllib.parse.urlencode(fields).encode(), method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with opener.open(request, timeout=30) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Location") or err.read().decode()


def next_month(ts: int) -> int:
    d = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    day = min(d.day, calendar.monthrange(year, month)[1])
    return int(d.replace(year=year, month=month, day=day).timestamp())


class Billing(unittest.TestCase):
    """Test mode: the fixture Stripe alone (customers held by it)."""

    @classmethod
    def setUpClass(cls):
        cls.proc, url = start_fake()
        cls.api = Client(url)

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(timeout=10)
        cls.proc.stderr.close()

    def setUp(self):
        self.api.control("POST", "/_test/reset")
        self.prices = {}
        for name, key, amount, interval in [
            ("Lead Generation", "leadgen_monthly", 2000, "month"),
            ("Email Automation", "email_monthly", 4900, "month"),
            ("Social Inbox", "social_monthly", 1500, "month"),
            ("Email Automation", "email_yearly", 49000, "year"),
        ]:
            product = self.api.ok("POST", "/v1/products", {"name": name})
            price = self.api.ok("POST", "/v1/prices", {
                "currency": "usd", "product": product["id"], "unit_amount": amount,
                "recurring[interval]": interval, "lookup_key": key})
            self.prices[key] = price["id"]

    # ---- helpers -----------------------------------------------------------------------------

    def customer(self, pm="pm_card_visa"):
        cus = self.api.ok("POST", "/v1/customers", {"email": "owner@example.com"})
        cus["invoice_settings"]["default_payment_method"] = pm
        self.api.control("POST", "/_test/objects", cus)
        return cus["id"]

    def subscribe(self, *keys, pm="pm_card_visa"):
        params = {"customer": self.customer(pm), "metadata[organization_id]": "org_1"}
        for n, key in enumerate(keys):
            params[f"items[{n}][price]"] = self.prices[key]
        return self.api.ok("POST", "/v1/subscriptions", params)

    def rewind(self, sub, start, end):
        """Moves the subscription's current period to [start, end] (as a test clock would)."""
        for item in sub["items"]["data"]:
            item["current_period_start"], item["current_period_end"] = start, end
        self.api.control("POST", "/_test/objects", sub)
        return sub

    def thirty_day_period(self, sub):
        """A 30-day period whose day 10 ends 100 s ago: (start, end, proration_date)."""
        start = int(time.time()) - 10 * DAY - 100
        self.rewind(sub, start, start + 30 * DAY)
        return start, start + 30 * DAY, start + 10 * DAY

    def events(self, kind=None):
        return [e for e in self.api.control("GET", "/_test/events") if kind is None or e["type"] == kind]

    def item_for(self, sub, key):
        return next(i for i in sub["items"]["data"] if i["price"]["id"] == self.prices[key])

    # ---- creating ----------------------------------------------------------------------------

    def test_a_subscription_holds_several_items_for_one_calendar_month_and_one_paid_invoice(self):
        sub = self.subscribe("leadgen_monthly", "email_monthly", "social_monthly")
        self.assertEqual(sub["status"], "active")
        self.assertEqual([i["price"]["lookup_key"] for i in sub["items"]["data"]],
                         ["leadgen_monthly", "email_monthly", "social_monthly"])
        item = sub["items"]["data"][0]
        self.assertEqual(item["price"]["recurring"]["interval"], "month")
        self.assertEqual(item["current_period_end"], next_month(item["current_period_start"]))
        self.assertEqual(sub["metadata"], {"organization_id": "org_1"})
        invoice = self.api.ok("GET", f"/v1/invoices/{sub['latest_invoice']}")
        self.assertEqual((invoice["status"], invoice["amount_due"], invoice["amount_paid"]), ("paid", 8400, 8400))
        self.assertEqual(len(invoice["lines"]["data"]), 3)
        listed = self.api.ok("GET", "/v1/subscriptions", {"customer": sub["customer"]})
        self.assertEqual([s["id"] for s in listed["data"]], [sub["id"]])

    def test_mixed_intervals_on_one_subscription_are_refused(self):
        status, body = self.api.call("POST", "/v1/subscriptions", {
            "customer": self.customer(), "items[0][price]": self.prices["leadgen_monthly"],
            "items[1][price]": self.prices["email_yearly"]})
        self.assertEqual(status, 400)
        self.assertEqual(body["error"]["type"], "invalid_request_error")
        self.assertIn("Found mismatch in interval field", body["error"]["message"])
        sub = self.subscribe("leadgen_monthly")
        status, body = self.api.call("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": self.prices["email_yearly"]})
        self.assertEqual(status, 400, body)
        self.assertIn("interval", body["error"]["message"])
        self.assertEqual(len(self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")["items"]["data"]), 1)

    def test_the_same_price_twice_is_refused(self):
        sub = self.subscribe("leadgen_monthly")
        status, body = self.api.call("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": self.prices["leadgen_monthly"], "proration_behavior": "always_invoice"})
        self.assertEqual(status, 400)
        self.assertEqual(body["error"]["message"],
                         f"Cannot add multiple subscription items with the same price: {self.prices['leadgen_monthly']}")

    def test_unknown_parameters_and_enum_values_are_refused(self):
        sub = self.subscribe("leadgen_monthly")
        status, body = self.api.call("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][pricee]": self.prices["email_monthly"]})
        self.assertEqual((status, body["error"].get("code"), body["error"]["param"]),
                         (400, "parameter_unknown", "items[0][pricee]"))
        status, body = self.api.call("POST", f"/v1/subscriptions/{sub['id']}", {"proration_behavior": "sometimes"})
        self.assertEqual((status, body["error"]["param"]), (400, "proration_behavior"))
        status, body = self.api.call("POST", f"/v1/subscriptions/{sub['id']}", {"payment_behavior": "hope"})
        self.assertEqual((status, body["error"]["param"]), (400, "payment_behavior"))
        status, body = self.api.call("POST", "/v1/invoices/create_preview", {
            "subscription": sub["id"], "subscription_details[proration_dat]": "1"})
        self.assertEqual((status, body["error"].get("code")), (400, "parameter_unknown"))

    # ---- prorations --------------------------------------------------------------------------

    def test_adding_49_dollars_ten_days_into_a_30_day_period_charges_32_67_at_once(self):
        sub = self.subscribe("leadgen_monthly")
        start, end, at = self.thirty_day_period(sub)
        sub = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": self.prices["email_monthly"], "proration_behavior": "always_invoice",
            "proration_date": at, "payment_behavior": "error_if_incomplete", "expand[]": "latest_invoice"})
        self.assertEqual(len(sub["items"]["data"]), 2)
        invoice = sub["latest_invoice"]
        self.assertIsInstance(invoice, dict)
        # 4900 x 20 days / 30 days = 3266.67 -> 3267
        self.assertEqual([l["amount"] for l in invoice["lines"]["data"]], [3267])
        self.assertEqual((invoice["amount_due"], invoice["status"], invoice["billing_reason"]),
                         (3267, "paid", "subscription_update"))
        line = invoice["lines"]["data"][0]
        self.assertEqual(line["description"],
                         f"Remaining time on 1 × Email Automation after {time.strftime('%d %b %Y', time.gmtime(at))}")
        self.assertEqual(line["period"], {"start": at, "end": end})
        self.assertTrue(line["parent"]["subscription_item_details"]["proration"])
        self.assertEqual(line["pricing"]["price_details"]["price"], self.prices["email_monthly"])
        added = self.item_for(sub, "email_monthly")
        self.assertEqual((added["current_period_start"], added["current_period_end"]), (start, end))

    def test_removing_an_item_credits_its_unused_time(self):
        sub = self.subscribe("leadgen_monthly", "email_monthly")
        _, _, at = self.thirty_day_period(sub)
        lead = self.item_for(sub, "leadgen_monthly")
        sub = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][id]": lead["id"], "items[0][deleted]": "true", "proration_behavior": "always_invoice",
            "proration_date": at, "expand[]": "latest_invoice"})
        self.assertEqual([i["price"]["lookup_key"] for i in sub["items"]["data"]], ["email_monthly"])
        invoice = sub["latest_invoice"]
        # -(2000 x 20 / 30) = -1333.33 -> -1333; a negative invoice is due 0 and credits the balance.
        self.assertEqual([l["amount"] for l in invoice["lines"]["data"]], [-1333])
        self.assertTrue(invoice["lines"]["data"][0]["description"].startswith("Unused time on 1 × Lead Generation after "))
        self.assertEqual((invoice["total"], invoice["amount_due"], invoice["status"]), (-1333, 0, "paid"))

    def test_a_swap_is_two_lines_credit_and_charge(self):
        sub = self.subscribe("leadgen_monthly")
        _, _, at = self.thirty_day_period(sub)
        item = sub["items"]["data"][0]
        sub = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][id]": item["id"], "items[0][price]": self.prices["email_monthly"],
            "proration_behavior": "always_invoice", "proration_date": at, "expand[]": "latest_invoice"})
        self.assertEqual([(i["id"], i["price"]["lookup_key"]) for i in sub["items"]["data"]],
                         [(item["id"], "email_monthly")])
        lines = sub["latest_invoice"]["lines"]["data"]
        # -2000 x 20/30 = -1333.33 -> -1333; +4900 x 20/30 = 3266.67 -> 3267; total 1934
        self.assertEqual([l["amount"] for l in lines], [-1333, 3267])
        self.assertTrue(lines[0]["description"].startswith("Unused time on 1 × Lead Generation"))
        self.assertTrue(lines[1]["description"].startswith("Remaining time on 1 × Email Automation"))
        self.assertEqual(sub["latest_invoice"]["amount_due"], 1934)

    def test_a_quantity_change_prorates_the_difference(self):
        sub = self.subscribe("social_monthly")
        _, _, at = self.thirty_day_period(sub)
        item = sub["items"]["data"][0]
        sub = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][id]": item["id"], "items[0][quantity]": "3", "proration_behavior": "always_invoice",
            "proration_date": at, "expand[]": "latest_invoice"})
        # -1500 x 20/30 = -1000; +4500 x 20/30 = 3000
        self.assertEqual([l["amount"] for l in sub["latest_invoice"]["lines"]["data"]], [-1000, 3000])
        self.assertTrue(sub["latest_invoice"]["lines"]["data"][1]["description"].startswith(
            "Remaining time on 3 × Social Inbox"))

    def test_proration_date_in_the_future_or_outside_the_period_is_refused(self):
        sub = self.subscribe("leadgen_monthly")
        start, end, _ = self.thirty_day_period(sub)
        for when in (int(time.time()) + 3600, start - 10):
            status, body = self.api.call("POST", f"/v1/subscriptions/{sub['id']}", {
                "items[0][price]": self.prices["email_monthly"], "proration_behavior": "always_invoice",
                "proration_date": when})
            self.assertEqual((status, body["error"]["param"]), (400, "proration_date"), body)
        self.assertEqual(len(self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")["items"]["data"]), 1)

    def test_create_prorations_waits_for_the_next_invoice_and_none_charges_nothing(self):
        sub = self.subscribe("leadgen_monthly")
        _, end, at = self.thirty_day_period(sub)
        first_invoice = sub["latest_invoice"]
        sub = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": self.prices["email_monthly"], "proration_date": at})
        self.assertEqual(sub["latest_invoice"], first_invoice)
        upcoming = self.api.ok("POST", "/v1/invoices/create_preview", {"subscription": sub["id"]})
        # pending proration 3267, then the renewal 2000 + 4900
        self.assertEqual(sorted(l["amount"] for l in upcoming["lines"]["data"]), [2000, 3267, 4900])
        self.assertEqual(upcoming["amount_due"], 3267 + 6900)
        sub2 = self.subscribe("leadgen_monthly")
        self.thirty_day_period(sub2)
        sub2 = self.api.ok("POST", f"/v1/subscriptions/{sub2['id']}", {
            "items[0][price]": self.prices["email_monthly"], "proration_behavior": "none"})
        upcoming = self.api.ok("POST", "/v1/invoices/create_preview", {"subscription": sub2["id"]})
        self.assertEqual(sorted(l["amount"] for l in upcoming["lines"]["data"]), [2000, 4900])

    def test_deleting_a_customer_cancels_its_subscriptions(self):
        # Stripe's reference (delete a customer): "Also immediately cancels any active
        # subscriptions on the customer."
        sub = self.subscribe("leadgen_monthly")
        self.api.ok("DELETE", f"/v1/customers/{sub['customer']}")
        after = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")
        self.assertEqual(after["status"], "canceled")
        self.assertIsNotNone(after["ended_at"])
        kinds = [e["type"] for e in self.api.control("GET", "/_test/events")
                 if e["data"]["object"].get("id") == sub["id"]]
        self.assertIn("customer.subscription.deleted", kinds)

    # ---- previews ----------------------------------------------------------------------------

    def test_the_preview_of_always_invoice_equals_the_charge_for_the_same_proration_date(self):
        sub = self.subscribe("leadgen_monthly")
        _, _, at = self.thirty_day_period(sub)
        ask = {"subscription_details[items][0][price]": self.prices["email_monthly"],
               "subscription_details[items][1][price]": self.prices["social_monthly"],
               "subscription_details[proration_date]": at,
               "subscription_details[proration_behavior]": "always_invoice"}
        preview = self.api.ok("POST", "/v1/invoices/create_preview", dict(ask, subscription=sub["id"],
                                                                         customer=sub["customer"]))
        self.assertEqual(preview["object"], "invoice")
        # 3266.67 -> 3267 and 1500 x 20/30 = 1000
        self.assertEqual([l["amount"] for l in preview["lines"]["data"]], [3267, 1000])
        self.assertEqual(preview["amount_due"], 4267)
        self.assertEqual(self.api.call("GET", f"/v1/invoices/{preview['id']}")[0], 404, "a preview is not stored")
        self.assertEqual(len(self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")["items"]["data"]), 1)
        sub = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": self.prices["email_monthly"], "items[1][price]": self.prices["social_monthly"],
            "proration_date": at, "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete", "expand[]": "latest_invoice"})
        charged = sub["latest_invoice"]
        self.assertEqual([(l["amount"], l["description"], l["period"]) for l in charged["lines"]["data"]],
                         [(l["amount"], l["description"], l["period"]) for l in preview["lines"]["data"]])
        self.assertEqual(charged["amount_due"], preview["amount_due"])

    def test_the_preview_without_prorations_is_the_next_renewal_at_full_price(self):
        sub = self.subscribe("leadgen_monthly")
        _, end, at = self.thirty_day_period(sub)
        preview = self.api.ok("POST", "/v1/invoices/create_preview", {
            "subscription": sub["id"], "subscription_details[items][0][price]": self.prices["email_monthly"],
            "subscription_details[proration_behavior]": "none"})
        self.assertEqual(sorted(l["amount"] for l in preview["lines"]["data"]), [2000, 4900])
        self.assertEqual({l["period"]["start"] for l in preview["lines"]["data"]}, {end})
        self.assertEqual({l["period"]["end"] for l in preview["lines"]["data"]}, {next_month(end)})
        self.assertFalse(any(l["parent"]["subscription_item_details"]["proration"] for l in preview["lines"]["data"]))

    def test_a_proration_date_cannot_preview_a_change_without_prorations(self):
        # Stripe's reference of subscription_details.proration_date: "proration_behavior cannot
        # be set to 'none'" and `subscription` is required with it.
        sub = self.subscribe("leadgen_monthly")
        _, _, at = self.thirty_day_period(sub)
        status, body = self.api.call("POST", "/v1/invoices/create_preview", {
            "subscription": sub["id"], "subscription_details[items][0][price]": self.prices["email_monthly"],
            "subscription_details[proration_date]": at, "subscription_details[proration_behavior]": "none"})
        self.assertEqual((status, body["error"]["param"]), (400, "subscription_details[proration_behavior]"), body)
        status, body = self.api.call("POST", "/v1/invoices/create_preview", {
            "customer": sub["customer"], "subscription_details[items][0][price]": self.prices["email_monthly"],
            "subscription_details[proration_date]": at})
        self.assertEqual(status, 400, body)

    def test_the_preview_of_a_first_purchase_is_the_first_invoice_at_full_price(self):
        preview = self.api.ok("POST", "/v1/invoices/create_preview", {
            "customer": self.customer(),
            "subscription_details[items][0][price]": self.prices["leadgen_monthly"],
            "subscription_details[items][1][price]": self.prices["email_monthly"]})
        self.assertEqual([l["amount"] for l in preview["lines"]["data"]], [2000, 4900])
        self.assertEqual((preview["amount_due"], preview["subtotal"], preview["total"], preview["currency"]),
                         (6900, 6900, 6900, "usd"))
        status, body = self.api.call("POST", "/v1/invoices/create_preview", {
            "customer": self.customer(),
            "subscription_details[items][0][price]": self.prices["leadgen_monthly"],
            "subscription_details[items][1][price]": self.prices["email_yearly"]})
        self.assertEqual(status, 400, body)

    # ---- failed charges ----------------------------------------------------------------------

    def test_error_if_incomplete_with_a_declining_card_answers_402_and_changes_nothing(self):
        sub = self.subscribe("leadgen_monthly")
        cus = self.api.ok("GET", f"/v1/customers/{sub['customer']}")
        cus["invoice_settings"]["default_payment_method"] = "pm_card_chargeCustomerFail"
        self.api.control("POST", "/_test/objects", cus)
        status, body = self.api.call("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": self.prices["email_monthly"], "proration_behavior": "always_invoice",
            "payment_behavior": "error_if_incomplete"})
        self.assertEqual((status, body["error"]["type"], body["error"]["code"]), (402, "card_error", "card_declined"))
        after = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")
        self.assertEqual((len(after["items"]["data"]), after["latest_invoice"], after["status"]),
                         (1, sub["latest_invoice"], "active"))

    def test_pending_if_incomplete_with_a_declining_card_keeps_the_items_and_paying_applies_them(self):
        sub = self.subscribe("leadgen_monthly")
        sub["default_payment_method"] = "pm_card_chargeCustomerFail"
        self.api.control("POST", "/_test/objects", sub)
        before = time.time()
        sub = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": self.prices["email_monthly"], "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete", "expand[]": "latest_invoice"})
        self.assertEqual([i["price"]["lookup_key"] for i in sub["items"]["data"]], ["leadgen_monthly"])
        self.assertEqual(sub["status"], "active")
        pending = sub["pending_update"]
        self.assertEqual([i["price"]["lookup_key"] for i in pending["subscription_items"]],
                         ["leadgen_monthly", "email_monthly"])
        self.assertAlmostEqual(pending["expires_at"], before + 23 * 3600, delta=5)
        invoice = sub["latest_invoice"]
        self.assertEqual((invoice["status"], invoice["attempted"], invoice["attempt_count"]), ("open", True, 1))
        self.assertTrue(invoice["hosted_invoice_url"])
        self.assertEqual(len(self.events("invoice.payment_failed")), 1)
        paid = self.api.ok("POST", f"/v1/invoices/{invoice['id']}/pay", {"payment_method": "pm_card_visa"})
        self.assertEqual(paid["status"], "paid")
        sub = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")
        self.assertIsNone(sub["pending_update"])
        self.assertEqual([i["price"]["lookup_key"] for i in sub["items"]["data"]], ["leadgen_monthly", "email_monthly"])
        self.assertEqual(len(self.events("customer.subscription.pending_update_applied")), 1)

    def test_pending_if_incomplete_accepts_only_the_pending_update_parameters(self):
        sub = self.subscribe("leadgen_monthly")
        status, body = self.api.call("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": self.prices["email_monthly"], "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete", "metadata[x]": "y"})
        self.assertEqual((status, body["error"]["type"], body["error"]["param"]), (400, "invalid_request_error", "metadata"))
        self.assertEqual(len(self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")["items"]["data"]), 1)

    def test_a_card_that_needs_3d_secure_leaves_an_open_invoice_until_authenticated(self):
        sub = self.subscribe("leadgen_monthly")
        sub["default_payment_method"] = "pm_card_authenticationRequired"
        self.api.control("POST", "/_test/objects", sub)
        status, body = self.api.call("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": self.prices["email_monthly"], "proration_behavior": "always_invoice",
            "payment_behavior": "error_if_incomplete"})
        self.assertEqual((status, body["error"]["code"]), (402, "invoice_payment_intent_requires_action"))
        sub = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": self.prices["email_monthly"], "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete"})
        self.assertIsNotNone(sub["pending_update"])
        self.assertEqual(len(self.events("invoice.payment_action_required")), 1)
        status, body = self.api.call("POST", f"/v1/invoices/{sub['latest_invoice']}/pay")
        self.assertEqual((status, body["error"]["code"]), (402, "invoice_payment_intent_requires_action"))
        paid = self.api.control("POST", f"/_test/invoices/{sub['latest_invoice']}/authenticate")
        self.assertEqual(paid["status"], "paid")
        sub = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")
        self.assertEqual((len(sub["items"]["data"]), sub["pending_update"]), (2, None))

    def test_allow_incomplete_applies_the_change_and_leaves_the_subscription_past_due(self):
        sub = self.subscribe("leadgen_monthly")
        sub["default_payment_method"] = "pm_card_chargeCustomerFail"
        self.api.control("POST", "/_test/objects", sub)
        sub = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": self.prices["email_monthly"], "proration_behavior": "always_invoice",
            "expand[]": "latest_invoice"})
        self.assertEqual((len(sub["items"]["data"]), sub["status"], sub["latest_invoice"]["status"]),
                         (2, "past_due", "open"))

    # ---- events and idempotency --------------------------------------------------------------

    def test_an_update_sends_the_events_stripe_sends(self):
        sub = self.subscribe("leadgen_monthly")
        created = self.events()
        self.assertEqual([e["type"] for e in created],
                         ["customer.subscription.created", "invoice.created", "invoice.finalized",
                          "invoice.paid", "invoice.payment_succeeded"])
        self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": self.prices["email_monthly"], "proration_behavior": "always_invoice"})
        later = [e for e in self.events() if e["id"] not in {c["id"] for c in created}]
        self.assertEqual([e["type"] for e in later],
                         ["invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded",
                          "customer.subscription.updated"])
        updated = later[-1]
        self.assertEqual(len(updated["data"]["previous_attributes"]["items"]["data"]), 1)
        self.assertEqual(len(updated["data"]["object"]["items"]["data"]), 2)
        listed = self.api.ok("GET", "/v1/events", {"type": "customer.subscription.updated"})
        self.assertEqual([e["id"] for e in listed["data"]], [updated["id"]])
        self.assertEqual(updated["pending_webhooks"], 0, "no local endpoint: counted as delivered")

    def test_an_idempotency_key_replays_and_two_concurrent_adds_of_one_price_end_with_one_item(self):
        sub = self.subscribe("leadgen_monthly")
        ask = {"items[0][price]": self.prices["email_monthly"], "proration_behavior": "always_invoice",
               "payment_behavior": "error_if_incomplete"}
        first = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", ask, idempotency="add-email-1")
        again = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", ask, idempotency="add-email-1")
        self.assertEqual(first, again)
        sub2 = self.subscribe("leadgen_monthly")
        self.api.control("POST", "/_test/latency", {"path": f"/v1/subscriptions/{sub2['id']}", "ms": 300})
        answers = []
        def add(key):
            answers.append(self.api.call("POST", f"/v1/subscriptions/{sub2['id']}", ask, idempotency=key))
        threads = [threading.Thread(target=add, args=(k,)) for k in ("admin-a", "admin-b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(status for status, _ in answers), [200, 400])
        refused = next(body for status, body in answers if status == 400)
        self.assertIn("Cannot add multiple subscription items with the same price", refused["error"]["message"])
        after = self.api.ok("GET", f"/v1/subscriptions/{sub2['id']}")
        self.assertEqual([i["price"]["lookup_key"] for i in after["items"]["data"]], ["leadgen_monthly", "email_monthly"])
        invoices = self.api.ok("GET", "/v1/invoices", {"subscription": sub2["id"]})
        self.assertEqual(len(invoices["data"]), 2, "the first invoice and one proration invoice")

    def test_reset_forgets_subscriptions_invoices_and_events(self):
        sub = self.subscribe("leadgen_monthly")
        self.api.control("POST", "/_test/reset")
        self.assertEqual(self.api.call("GET", f"/v1/subscriptions/{sub['id']}")[0], 404)
        self.assertEqual(self.api.call("GET", f"/v1/invoices/{sub['latest_invoice']}")[0], 404)
        self.assertEqual(self.events(), [])


def have_localstripe() -> bool:
    return os.path.exists(os.path.join(VENV_BIN, "localstripe"))


class LocalStack(unittest.TestCase):
    """With --upstream: localstripe keeps customers and cards, the fake the subscriptions."""

    @classmethod
    def setUpClass(cls):
        if not have_localstripe():
            raise unittest.SkipTest("no localstripe in .venv (run scripts/bootstrap)")
        port = free_port()
        cls.ls = subprocess.Popen([os.path.join(VENV_BIN, "localstripe"), "--port", str(port), "--from-scratch"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.ls_url = f"http://127.0.0.1:{port}"
        wait_for(cls.ls_url + "/v1/customers")
        cls.proc, url = start_fake(cls.ls_url)
        cls.api = Client(url)

    @classmethod
    def tearDownClass(cls):
        for proc in (cls.proc, cls.ls):
            proc.terminate()
            proc.wait(timeout=10)
        cls.proc.stderr.close()

    def setUp(self):
        self.api.control("POST", "/_test/reset")
        # The account's default portal configuration (a fresh account has none: sessions without
        # `configuration` are refused until the portal settings are saved).
        self.api.control("POST", "/_test/portal/default")

    def catalog(self):
        prices = []
        for name, amount in (("Lead Generation", 2000), ("Email Automation", 4900), ("Social Inbox", 1500)):
            product = self.api.ok("POST", "/v1/products", {"name": name})
            prices.append(self.api.ok("POST", "/v1/prices", {
                "currency": "usd", "product": product["id"], "unit_amount": amount,
                "recurring[interval]": "month"})["id"])
        return prices

    def checkout(self, prices, card="4242424242424242"):
        customer = self.api.ok("POST", "/v1/customers", {"email": "owner@example.com"})["id"]
        params = {"mode": "subscription", "customer": customer, "success_url": "http://app.test/done",
                  "subscription_data[metadata][organization_id]": "org_demo"}
        for n, price in enumerate(prices):
            params[f"line_items[{n}][price]"] = price
            params[f"line_items[{n}][quantity]"] = "1"
        session = self.api.ok("POST", "/v1/checkout/sessions", params)
        status, where = self.api.form(session["url"], {"card": card, "exp": "12/34", "cvc": "123"})
        return customer, session, status, where

    def test_local_checkout_of_three_modules_makes_one_subscription_with_three_items(self):
        prices = self.catalog()
        customer, session, status, where = self.checkout(prices)
        self.assertEqual((status, where), (303, "http://app.test/done"))
        subs = self.api.ok("GET", "/v1/subscriptions", {"customer": customer})["data"]
        self.assertEqual(len(subs), 1)
        sub = subs[0]
        self.assertEqual([i["price"]["id"] for i in sub["items"]["data"]], prices)
        self.assertEqual((sub["status"], sub["metadata"]), ("active", {"organization_id": "org_demo"}))
        self.assertEqual(self.api.ok("GET", f"/v1/checkout/sessions/{session['id']}")["subscription"], sub["id"])
        invoice = self.api.ok("GET", f"/v1/invoices/{sub['latest_invoice']}")
        self.assertEqual((invoice["status"], invoice["amount_paid"]), ("paid", 2000 + 4900 + 1500))
        kinds = [e["type"] for e in self.api.control("GET", "/_test/events")]
        for kind in ("checkout.session.completed", "customer.subscription.created", "invoice.paid"):
            self.assertIn(kind, kinds)

    def test_a_card_that_fails_after_attaching_pends_the_update_until_paid_on_the_invoice_page(self):
        prices = self.catalog()
        customer, _, status, _ = self.checkout(prices[:1])
        self.assertEqual(status, 303)
        sub = self.api.ok("GET", "/v1/subscriptions", {"customer": customer})["data"][0]
        # The portal's card update attaches 4000 0000 0000 0341, which declines later charges.
        portal = self.api.ok("POST", "/v1/billing_portal/sessions", {"customer": customer})
        status, body = self.api.form(portal["url"], {"action": "card", "card": "4000000000000341",
                                                    "exp": "12/34", "cvc": "123"})
        self.assertEqual(status, 303, body)
        sub = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": prices[1], "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete", "expand[]": "latest_invoice"})
        self.assertEqual((len(sub["items"]["data"]), sub["latest_invoice"]["status"]), (1, "open"))
        url = sub["latest_invoice"]["hosted_invoice_url"]
        self.assertTrue(url.startswith(self.api.base + "/i/"), url)
        status, body = self.api.form(url, {"action": "card", "card": "4242424242424242", "exp": "12/34", "cvc": "123"})
        self.assertEqual(status, 303, body)
        sub = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")
        self.assertEqual((len(sub["items"]["data"]), sub["pending_update"]), (2, None))

    def test_the_portal_offers_no_interval_switch_on_a_subscription_with_several_items(self):
        prices = self.catalog()
        customer, _, _, _ = self.checkout(prices[:2])
        portal = self.api.ok("POST", "/v1/billing_portal/sessions", {"customer": customer})
        with urllib.request.urlopen(portal["url"], timeout=30) as reply:
            page = reply.read().decode()
        self.assertIn("Cancel at period end", page)
        self.assertNotIn("Switch to", page)


if __name__ == "__main__":
    unittest.main()
