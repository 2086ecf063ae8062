"""The fixture Stripe's B2B checkout: Checkout's parameters refused as Stripe refuses them, tax from
the fixed rate table (fake_billing.py: DE 19 %, FR 20 %, GB 20 %, NL 21 %, elsewhere 0 %; an
EU/UK VAT ID of the buyer's country: reverse charge, 0 %), promotion-code discounts before tax,
trials and the test clock (`POST /_test/clock`), `checkout.session.expired`, the local Checkout
page. Expected amounts are worked out by hand in each test.

Run: .venv/bin/python -m unittest tests/emulators/test_fake_stripe_b2b.py
"""
import os
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_fake_stripe_billing import VENV_BIN, Client, free_port, have_localstripe, start_fake, wait_for  # noqa: E402

DAY = 86400
DE_ADDRESS = {"country": "DE", "line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117"}


class Base(unittest.TestCase):
    upstream = False

    @classmethod
    def setUpClass(cls):
        cls.ls = None
        upstream = None
        if cls.upstream:
            if not have_localstripe():
                raise unittest.SkipTest("no localstripe in .venv (run scripts/bootstrap)")
            port = free_port()
            cls.ls = subprocess.Popen([os.path.join(VENV_BIN, "localstripe"), "--port", str(port), "--from-scratch"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            upstream = f"http://127.0.0.1:{port}"
            wait_for(upstream + "/v1/customers")
        cls.proc, url = start_fake(upstream)
        cls.api = Client(url)

    @classmethod
    def tearDownClass(cls):
        for proc in (cls.proc, cls.ls):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)
        cls.proc.stderr.close()

    def setUp(self):
        self.api.control("POST", "/_test/reset")
        product = self.api.ok("POST", "/v1/products", {"name": "Lead Generation", "tax_code": "txcd_10103001"})
        self.price = self.api.ok("POST", "/v1/prices", {
            "currency": "usd", "product": product["id"], "unit_amount": 9900, "recurring[interval]": "month",
            "lookup_key": "leadgen_monthly", "tax_behavior": "exclusive"})["id"]
        self.api.control("POST", "/_test/objects", {
            "id": "promo_twenty", "object": "promotion_code", "code": "TWENTY", "active": True,
            "coupon": {"id": "coupon_twenty", "object": "coupon", "percent_off": 20, "duration": "forever"}})

    def customer(self):
        return self.api.ok("POST", "/v1/customers", {"email": "billing@acme.example", "name": "Acme GmbH"})["id"]

    def session(self, customer, **extra):
        params = {"mode": "subscription", "customer": customer, "success_url": "http://app.test/done",
                  "line_items[0][price]": self.price, "line_items[0][quantity]": "1",
                  "billing_address_collection": "required", "tax_id_collection[enabled]": "true",
                  "customer_update[name]": "auto", "customer_update[address]": "auto",
                  "automatic_tax[enabled]": "true", "allow_promotion_codes": "true",
                  "subscription_data[metadata][organization_id]": "org_acme"}
        params.update(extra)
        return self.api.ok("POST", "/v1/checkout/sessions", params)

    def complete(self, session, **details):
        return self.api.control("POST", f"/_test/checkout/{session['id']}/complete", details)

    def events(self, kind=None):
        return [e for e in self.api.control("GET", "/_test/events") if kind is None or e["type"] == kind]

    def invoice(self, iid):
        return self.api.ok("GET", f"/v1/invoices/{iid}")


class Parameters(Base):
    def test_an_unknown_or_misspelled_checkout_parameter_answers_parameter_unknown(self):
        # Stripe names the parameter down to its first unknown part.
        for name, named in (("customer_update[nmae]", None), ("automatic_tax[enable]", None),
                            ("tax_id_collection[enabeld]", None),
                            ("subscription_data[trial_settings][end_behaviour][missing_payment_method]",
                             "subscription_data[trial_settings][end_behaviour]"),
                            ("allow_promotion_code", None), ("billing_adress_collection", None)):
            status, body = self.api.call("POST", "/v1/checkout/sessions", {
                "mode": "subscription", "success_url": "http://app.test/done", name: "auto"})
            self.assertEqual((status, body["error"]["code"], body["error"]["param"]),
                             (400, "parameter_unknown", named or name), name)
        status, body = self.api.call("POST", "/v1/checkout/sessions", {
            "mode": "subscription", "success_url": "x", "payment_method_collection": "sometimes"})
        self.assertEqual((status, body["error"]["param"]), (400, "payment_method_collection"))
        status, body = self.api.call("POST", "/v1/checkout/sessions", {
            "mode": "subscription", "success_url": "x",
            "subscription_data[trial_settings][end_behavior][missing_payment_method]": "delete"})
        self.assertEqual(status, 400)
        for endpoint, name in (("/v1/customers", "nmae"), ("/v1/prices", "tax_behaviour"), ("/v1/products", "taxcode")):
            status, body = self.api.call("POST", endpoint, {name: "x"})
            self.assertEqual((status, body["error"]["code"]), (400, "parameter_unknown"), endpoint)

    def test_the_parameters_the_code_sends_are_accepted_and_shown_on_the_session(self):
        session = self.session(self.customer(), **{
            "payment_method_collection": "if_required", "subscription_data[trial_period_days]": "14",
            "subscription_data[trial_settings][end_behavior][missing_payment_method]": "cancel"})
        self.assertEqual(session["automatic_tax"]["enabled"], True)
        self.assertEqual(session["tax_id_collection"]["enabled"], True)
        self.assertEqual((session["billing_address_collection"], session["allow_promotion_codes"],
                          session["payment_method_collection"]), ("required", True, "if_required"))

    def test_stripe_refuses_these_combinations(self):
        cus = self.customer()
        cases = [
            ({"customer_update[name]": "auto"}, "customer_update", False),
            ({"tax_id_collection[enabled]": "true", "customer_update[name]": "never"}, "tax_id_collection[enabled]", True),
            ({"automatic_tax[enabled]": "true"}, "automatic_tax[enabled]", True),
            ({"allow_promotion_codes": "true", "discounts[0][coupon]": "coupon_twenty"}, "allow_promotion_codes", True),
            ({"subscription_data[trial_period_days]": "0"}, "subscription_data[trial_period_days]", True),
        ]
        for extra, param, with_customer in cases:
            params = {"mode": "subscription", "success_url": "http://app.test/done",
                      "line_items[0][price]": self.price, "line_items[0][quantity]": "1", **extra}
            if with_customer:
                params["customer"] = cus
            status, body = self.api.call("POST", "/v1/checkout/sessions", params)
            self.assertEqual((status, body["error"]["type"], body["error"].get("param")),
                             (400, "invalid_request_error", param), extra)
        status, body = self.api.call("POST", "/v1/checkout/sessions", {
            "mode": "payment", "success_url": "x", "line_items[0][price]": self.price,
            "payment_method_collection": "if_required"})
        self.assertEqual((status, body["error"]["param"]), (400, "payment_method_collection"))

    def test_a_price_keeps_its_tax_behavior_once_set(self):
        status, body = self.api.call("POST", f"/v1/prices/{self.price}", {"tax_behavior": "inclusive"})
        self.assertEqual((status, body["error"]["type"], body["error"]["param"]), (400, "invalid_request_error", "tax_behavior"))
        self.assertEqual(self.api.ok("POST", f"/v1/prices/{self.price}", {"tax_behavior": "exclusive"})["tax_behavior"],
                         "exclusive", "the same value again is no change")
        product = self.api.ok("POST", "/v1/products", {"name": "Email"})
        loose = self.api.ok("POST", "/v1/prices", {"currency": "usd", "product": product["id"], "unit_amount": 100,
                                                   "recurring[interval]": "month"})
        self.assertEqual(loose["tax_behavior"], "unspecified")
        self.assertEqual(self.api.ok("POST", f"/v1/prices/{loose['id']}", {"tax_behavior": "exclusive"})["tax_behavior"],
                         "exclusive")

    def test_a_customer_carries_name_and_email_and_can_be_updated(self):
        cus = self.api.ok("POST", "/v1/customers", {"name": "Acme GmbH", "email": "billing@acme.example"})
        self.assertEqual((cus["name"], cus["email"]), ("Acme GmbH", "billing@acme.example"))
        updated = self.api.ok("POST", f"/v1/customers/{cus['id']}", {"name": "Acme AG"})
        self.assertEqual(updated["name"], "Acme AG")
        status, body = self.api.call("POST", f"/v1/customers/{cus['id']}", {"nmae": "x"})
        self.assertEqual((status, body["error"]["code"]), (400, "parameter_unknown"))


class Tax(Base):
    def test_a_buyer_in_germany_without_a_vat_id_pays_19_percent(self):
        cus = self.customer()
        done = self.complete(self.session(cus), address=DE_ADDRESS, business_name="Acme GmbH")
        sub = self.api.ok("GET", f"/v1/subscriptions/{done['subscription']}")
        self.assertEqual((sub["status"], sub["automatic_tax"]["enabled"]), ("active", True))
        inv = self.invoice(done["invoice"])
        # 9900 x 19 % = 1881; 9900 + 1881 = 11781
        self.assertEqual((inv["subtotal"], inv["total_excluding_tax"], inv["total"], inv["amount_due"],
                          inv["amount_paid"]), (9900, 9900, 11781, 11781, 11781))
        self.assertEqual([(t["amount"], t["tax_behavior"], t["taxability_reason"], t["taxable_amount"])
                          for t in inv["total_taxes"]], [(1881, "exclusive", "standard_rated", 9900)])
        self.assertEqual(inv["lines"]["data"][0]["taxes"][0]["amount"], 1881)
        self.assertEqual(inv["total_discount_amounts"], [])
        self.assertEqual((inv["customer_name"], inv["customer_address"]["country"]), ("Acme GmbH", "DE"))
        self.assertEqual(done["total_details"], {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 1881})
        self.assertEqual((done["amount_subtotal"], done["amount_total"], done["payment_status"]), (9900, 11781, "paid"))
        self.assertEqual(done["customer_details"]["address"]["country"], "DE")
        customer = self.api.ok("GET", f"/v1/customers/{cus}")
        self.assertEqual((customer["name"], customer["address"]["city"]), ("Acme GmbH", "Berlin"))

    def test_a_german_business_with_a_german_vat_id_is_reverse_charged(self):
        cus = self.customer()
        done = self.complete(self.session(cus), address=DE_ADDRESS, business_name="Acme GmbH",
                             vat_id="DE123456789")
        inv = self.invoice(done["invoice"])
        self.assertEqual((inv["subtotal"], inv["total"], inv["amount_due"]), (9900, 9900, 9900))
        self.assertEqual([(t["amount"], t["taxability_reason"]) for t in inv["total_taxes"]], [(0, "reverse_charge")])
        self.assertEqual(inv["customer_tax_ids"], [{"type": "eu_vat", "value": "DE123456789"}])
        self.assertEqual(done["customer_details"]["tax_ids"], [{"type": "eu_vat", "value": "DE123456789"}])
        self.assertEqual(done["customer_details"]["business_name"], "Acme GmbH")
        customer = self.api.ok("GET", f"/v1/customers/{cus}", {"expand[]": "tax_ids"})
        self.assertEqual([t["value"] for t in customer["tax_ids"]["data"]], ["DE123456789"])
        kinds = [e["type"] for e in self.events()]
        self.assertLess(kinds.index("customer.tax_id.created"), kinds.index("checkout.session.completed"))

    def test_a_vat_id_of_another_country_or_malformed_is_refused_and_a_us_buyer_pays_no_tax(self):
        session = self.session(self.customer())
        for vat in ("FR12345678901", "DE1"):
            status = None
            try:
                self.complete(session, address=DE_ADDRESS, business_name="Acme GmbH", vat_id=vat)
            except urllib.error.HTTPError as err:
                status = err.code
            self.assertEqual(status, 400, vat)
        done = self.complete(session, address={"country": "US", "line1": "1 Main St", "city": "Austin",
                                               "postal_code": "78701"})
        inv = self.invoice(done["invoice"])
        self.assertEqual((inv["total"], [t["taxability_reason"] for t in inv["total_taxes"]]), (9900, ["not_collecting"]))

    def test_without_automatic_tax_there_is_no_tax(self):
        cus = self.customer()
        session = self.api.ok("POST", "/v1/checkout/sessions", {
            "mode": "subscription", "customer": cus, "success_url": "http://app.test/done",
            "line_items[0][price]": self.price, "billing_address_collection": "required",
            "customer_update[address]": "auto"})
        done = self.complete(session, address=DE_ADDRESS)
        inv = self.invoice(done["invoice"])
        self.assertEqual((inv["total"], inv["total_taxes"], inv["automatic_tax"]["enabled"]), (9900, [], False))

    def test_a_proration_and_its_preview_are_taxed_too(self):
        cus = self.customer()
        done = self.complete(self.session(cus), address=DE_ADDRESS)
        product = self.api.ok("POST", "/v1/products", {"name": "Email Automation"})
        email = self.api.ok("POST", "/v1/prices", {"currency": "usd", "product": product["id"], "unit_amount": 4900,
                                                   "recurring[interval]": "month", "tax_behavior": "exclusive"})["id"]
        sub = self.api.ok("GET", f"/v1/subscriptions/{done['subscription']}")
        start = sub["items"]["data"][0]["current_period_start"]
        preview = self.api.ok("POST", "/v1/invoices/create_preview", {
            "subscription": sub["id"], "subscription_details[items][0][price]": email,
            "subscription_details[proration_behavior]": "always_invoice",
            "subscription_details[proration_date]": str(start)})
        changed = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {
            "items[0][price]": email, "proration_behavior": "always_invoice", "proration_date": str(start),
            "expand[]": "latest_invoice"})
        inv = changed["latest_invoice"]
        # The whole period remains: 4900, tax 4900 x 19 % = 931, total 5831
        self.assertEqual((inv["subtotal"], sum(t["amount"] for t in inv["total_taxes"]), inv["total"]), (4900, 931, 5831))
        self.assertEqual((preview["subtotal"], preview["total"]), (inv["subtotal"], inv["total"]))


class Discounts(Base):
    def test_twenty_percent_off_99_dollars_is_1980_before_tax(self):
        cus = self.customer()
        done = self.complete(self.session(cus), address=DE_ADDRESS, promotion_code="twenty")
        inv = self.invoice(done["invoice"])
        sub = self.api.ok("GET", f"/v1/subscriptions/{done['subscription']}")
        # 9900 x 20 % = 1980 off; (9900 - 1980) x 19 % = 1504.8 -> 1505; 7920 + 1505 = 9425
        self.assertEqual([d["amount"] for d in inv["total_discount_amounts"]], [1980])
        self.assertEqual(inv["discounts"], sub["discounts"])
        self.assertEqual((inv["subtotal"], inv["total_excluding_tax"], inv["total"], inv["amount_due"]),
                         (9900, 7920, 9425, 9425))
        self.assertEqual(inv["total_taxes"][0]["taxable_amount"], 7920)
        self.assertEqual(done["total_details"]["amount_discount"], 1980)
        self.assertEqual(done["discounts"], [{"coupon": "coupon_twenty", "promotion_code": "promo_twenty"}])

    def test_an_unknown_code_or_a_session_without_promotion_codes_is_refused(self):
        cus = self.customer()
        with self.assertRaises(urllib.error.HTTPError):
            self.complete(self.session(cus), address=DE_ADDRESS, promotion_code="NOPE")
        session = self.session(cus, allow_promotion_codes="false")
        with self.assertRaises(urllib.error.HTTPError):
            self.complete(session, address=DE_ADDRESS, promotion_code="TWENTY")


class Trials(Base):
    def trial(self, **details):
        cus = self.customer()
        session = self.session(cus, **{
            "payment_method_collection": "if_required", "subscription_data[trial_period_days]": "14",
            "subscription_data[trial_settings][end_behavior][missing_payment_method]": "cancel"})
        done = self.complete(session, address=DE_ADDRESS, business_name="Acme GmbH", **details)
        return cus, done

    def test_a_14_day_trial_without_a_card_is_trialing_then_warned_then_canceled(self):
        clock = self.api.control("GET", "/_test/clock")["now"]
        cus, done = self.trial()
        sub = self.api.ok("GET", f"/v1/subscriptions/{done['subscription']}")
        self.assertEqual(sub["status"], "trialing")
        self.assertIsNone(sub["default_payment_method"])
        self.assertAlmostEqual(sub["trial_start"], clock, delta=5)
        self.assertEqual(sub["trial_end"] - sub["trial_start"], 14 * DAY)
        self.assertEqual(sub["trial_settings"]["end_behavior"]["missing_payment_method"], "cancel")
        inv = self.invoice(done["invoice"])
        self.assertEqual((inv["total"], inv["amount_paid"], inv["status"]), (0, 0, "paid"))
        self.assertEqual(done["payment_status"], "no_payment_required")
        self.assertEqual(self.events("customer.subscription.trial_will_end"), [])
        self.api.control("POST", "/_test/clock", {"advance_seconds": 11 * DAY + 60})
        warned = self.events("customer.subscription.trial_will_end")
        self.assertEqual([e["data"]["object"]["id"] for e in warned], [sub["id"]])
        self.assertEqual(self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")["status"], "trialing")
        self.api.control("POST", "/_test/clock", {"advance_seconds": 3 * DAY})
        ended = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")
        self.assertEqual((ended["status"], ended["ended_at"]), ("canceled", sub["trial_end"]))
        self.assertEqual([e["data"]["object"]["id"] for e in self.events("customer.subscription.deleted")], [sub["id"]])
        self.assertEqual(len(self.api.ok("GET", "/v1/invoices", {"subscription": sub["id"]})["data"]), 1,
                         "no invoice at the end of a canceled trial")

    def test_a_trial_with_a_card_becomes_active_and_charges_the_first_real_invoice(self):
        cus, done = self.trial(payment_method="pm_card_visa")
        sub = self.api.ok("GET", f"/v1/subscriptions/{done['subscription']}")
        self.api.control("POST", "/_test/clock", {"advance_seconds": 14 * DAY + 60})
        after = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")
        self.assertEqual(after["status"], "active")
        self.assertEqual(after["items"]["data"][0]["current_period_start"], sub["trial_end"])
        inv = self.invoice(after["latest_invoice"])
        self.assertEqual((inv["billing_reason"], inv["status"], inv["total"], inv["amount_paid"]),
                         ("subscription_cycle", "paid", 11781, 11781))
        kinds = [e["type"] for e in self.events()]
        self.assertLess(kinds.index("customer.subscription.trial_will_end"), kinds.index("invoice.payment_succeeded",
                                                                                           kinds.index("customer.subscription.trial_will_end")))

    def test_a_renewal_with_a_declining_card_leaves_the_subscription_past_due(self):
        cus, done = self.trial(payment_method="pm_card_chargeCustomerFail")
        self.api.control("POST", "/_test/clock", {"advance_seconds": 14 * DAY + 60})
        sub = self.api.ok("GET", f"/v1/subscriptions/{done['subscription']}")
        self.assertEqual(sub["status"], "past_due")
        self.assertEqual(self.invoice(sub["latest_invoice"])["status"], "open")
        self.assertEqual(len(self.events("invoice.payment_failed")), 1)

    def test_the_clock_renews_at_the_period_end_and_reset_sets_it_back(self):
        cus = self.customer()
        done = self.complete(self.session(cus), address=DE_ADDRESS)
        sub = self.api.ok("GET", f"/v1/subscriptions/{done['subscription']}")
        end = sub["items"]["data"][0]["current_period_end"]
        moved = self.api.control("POST", "/_test/clock", {"to": end + 60})
        self.assertEqual([h["what"] for h in moved["happened"]], ["period_end"])
        invoices = self.api.ok("GET", "/v1/invoices", {"subscription": sub["id"]})["data"]
        renewal = next(i for i in invoices if i["billing_reason"] == "subscription_cycle")
        self.assertEqual((renewal["total"], renewal["status"]), (11781, "paid"))
        self.api.control("POST", "/_test/reset")
        self.assertEqual(self.api.control("GET", "/_test/clock")["offset"], 0)


class Expiry(Base):
    def test_expiring_a_session_emits_checkout_session_expired(self):
        cus = self.customer()
        first = self.session(cus)
        self.api.ok("POST", f"/v1/checkout/sessions/{first['id']}/expire")
        second = self.session(cus)
        self.api.control("POST", f"/_test/checkout/{second['id']}/expire")
        third = self.session(cus)
        self.api.control("POST", "/_test/clock", {"advance_seconds": DAY + 1})
        expired = self.events("checkout.session.expired")
        self.assertEqual([e["data"]["object"]["id"] for e in expired], [first["id"], second["id"], third["id"]])
        self.assertEqual(self.api.ok("GET", f"/v1/checkout/sessions/{third['id']}")["status"], "expired")
        self.assertEqual(self.api.ok("GET", "/v1/subscriptions", {"customer": cus})["data"], [])


class LocalPage(Base):
    """The local Checkout page (with localstripe as the upstream, as in the local stack)."""
    upstream = True

    def page(self, url):
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.read().decode()

    def test_the_page_asks_for_company_details_shows_tax_and_a_trial_needs_no_card(self):
        cus = self.customer()
        session = self.session(cus, **{
            "payment_method_collection": "if_required", "subscription_data[trial_period_days]": "14",
            "subscription_data[trial_settings][end_behavior][missing_payment_method]": "cancel"})
        html = self.page(session["url"])
        for text in ("Start 14-day free trial", "Nothing to pay today", "<label for=business_name>",
                     "<label for=vat_id>", "<label for=country>", "<label for=line1>", "<label for=city>",
                     "<label for=postal_code>", "<label for=promotion_code>"):
            self.assertIn(text, html)
        self.assertNotIn("Card number", html)
        form = {"business_name": "Acme GmbH", "country": "DE", "line1": "Unter den Linden 1", "city": "Berlin",
                "postal_code": "10117", "promotion_code": "TWENTY", "action": "apply"}
        status, html = self.api.form(session["url"], form)
        self.assertEqual(status, 200)
        # after the trial: 9900 - 1980 = 7920, tax 1505, total 9425
        self.assertIn("USD 94.25", html)
        self.assertIn("−USD 19.80", html)
        status, where = self.api.form(session["url"], dict(form, action="pay", vat_id="DE123456789"))
        self.assertEqual((status, where), (303, "http://app.test/done"))
        done = self.api.ok("GET", f"/v1/checkout/sessions/{session['id']}")
        sub = self.api.ok("GET", f"/v1/subscriptions/{done['subscription']}")
        self.assertEqual((sub["status"], sub["default_payment_method"]), ("trialing", None))
        self.assertEqual(done["customer_details"]["tax_ids"], [{"type": "eu_vat", "value": "DE123456789"}])
        self.api.control("POST", "/_test/clock", {"advance_seconds": 14 * DAY + 60})
        self.assertEqual(self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")["status"], "canceled")

    def test_a_paid_checkout_on_the_page_charges_tax(self):
        cus = self.customer()
        session = self.session(cus)
        html = self.page(session["url"])
        self.assertIn("Card number", html)
        status, where = self.api.form(session["url"], {
            "business_name": "Acme GmbH", "country": "DE", "line1": "Unter den Linden 1", "city": "Berlin",
            "postal_code": "10117", "action": "pay", "card": "4242424242424242", "exp": "12/34", "cvc": "123"})
        self.assertEqual(status, 303, where)
        done = self.api.ok("GET", f"/v1/checkout/sessions/{session['id']}")
        self.assertEqual(self.invoice(done["invoice"])["amount_paid"], 11781)
        self.assertEqual(self.api.ok("GET", f"/v1/customers/{cus}")["address"]["country"], "DE")


if __name__ == "__main__":
    unittest.main()
