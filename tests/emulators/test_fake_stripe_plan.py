"""The fixture Stripe's plan changes against Stripe's documented behaviour: subscription schedules
(a module removed at the period end, released to undo it), the last module canceled at the period
end, a plan's interval switched (prorations by hand), a renewal that fails (past due, paid on the
hosted invoice page), billing-portal configurations and the local portal page that follows them.
Expected amounts are worked out by hand in each test, never by the double's own code.

Run: .venv/bin/python -m unittest tests/emulators/test_fake_stripe_plan.py
"""
import os
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_fake_stripe_billing import (DAY, Client, have_localstripe, next_month, start_fake,  # noqa: E402
                                      free_port, wait_for, VENV_BIN)
import subprocess  # noqa: E402


def next_month_n(ts: int, months: int) -> int:
    for _ in range(months):
        ts = next_month(ts)
    return ts


class Plan(unittest.TestCase):
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
            ("Lead Generation", "leadgen_yearly", 20000, "year"),
            ("Pro", "pro_monthly", 9900, "month"),
            ("Pro", "pro_yearly", 99900, "year"),
        ]:
            product = self.api.ok("POST", "/v1/products", {"name": name})
            price = self.api.ok("POST", "/v1/prices", {
                "currency": "usd", "product": product["id"], "unit_amount": amount,
                "recurring[interval]": interval, "lookup_key": key})
            self.prices[key] = price["id"]

    # ---- helpers -----------------------------------------------------------------------------

    def customer(self, pm="pm_card_visa", **fields):
        cus = self.api.ok("POST", "/v1/customers", dict({"email": "owner@example.com"}, **fields))
        cus["invoice_settings"]["default_payment_method"] = pm
        self.api.control("POST", "/_test/objects", cus)
        return cus["id"]

    def subscribe(self, *keys, pm="pm_card_visa", **extra):
        params = dict({"customer": self.customer(pm), "metadata[organization_id]": "org_1"}, **extra)
        for n, key in enumerate(keys):
            params[f"items[{n}][price]"] = self.prices[key]
        return self.api.ok("POST", "/v1/subscriptions", params)

    def events(self, kind=None):
        return [e for e in self.api.control("GET", "/_test/events") if kind is None or e["type"] == kind]

    def period(self, sub):
        item = sub["items"]["data"][0]
        return item["current_period_start"], item["current_period_end"]

    def advance_to(self, ts):
        return self.api.control("POST", "/_test/clock", {"to": ts})

    def schedule_removing(self, sub, keep_keys, key="k1"):
        """The lead's two calls: a schedule from the subscription, then phase 1 without a module."""
        sched = self.api.ok("POST", "/v1/subscription_schedules", {"from_subscription": sub["id"]},
                            idempotency=f"sched-{key}")
        start, end = self.period(sub)
        params = {"end_behavior": "release", "proration_behavior": "none",
                  "phases[0][start_date]": start, "phases[0][end_date]": end}
        for n, item in enumerate(sub["items"]["data"]):
            params[f"phases[0][items][{n}][price]"] = item["price"]["id"]
            params[f"phases[0][items][{n}][quantity]"] = item["quantity"]
        for n, k in enumerate(keep_keys):
            params[f"phases[1][items][{n}][price]"] = self.prices[k]
            params[f"phases[1][items][{n}][quantity]"] = 1
        params["phases[1][duration][interval]"] = "month"
        params["phases[1][duration][interval_count]"] = 1
        return sched, self.api.ok("POST", f"/v1/subscription_schedules/{sched['id']}", params)

    # ---- schedules ---------------------------------------------------------------------------

    def test_a_schedule_from_a_subscription_is_its_current_period(self):
        sub = self.subscribe("leadgen_monthly", "email_monthly")
        start, end = self.period(sub)
        sched = self.api.ok("POST", "/v1/subscription_schedules", {"from_subscription": sub["id"]},
                            idempotency="one")
        self.assertEqual((sched["object"], sched["status"], sched["end_behavior"], sched["subscription"]),
                         ("subscription_schedule", "active", "release", sub["id"]))
        self.assertTrue(sched["id"].startswith("sub_sched_"))
        self.assertEqual(sched["current_phase"], {"start_date": start, "end_date": end})
        self.assertEqual(len(sched["phases"]), 1)
        phase = sched["phases"][0]
        self.assertEqual((phase["start_date"], phase["end_date"], phase["trial_end"]), (start, end, None))
        self.assertEqual([(i["price"], i["quantity"]) for i in phase["items"]],
                         [(self.prices["leadgen_monthly"], 1), (self.prices["email_monthly"], 1)])
        again = self.api.ok("POST", "/v1/subscription_schedules", {"from_subscription": sub["id"]},
                            idempotency="one")
        self.assertEqual(again["id"], sched["id"])
        got = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}", {"expand[]": "schedule"})
        self.assertEqual(got["schedule"]["id"], sched["id"])
        self.assertEqual(self.api.ok("GET", f"/v1/subscription_schedules/{sched['id']}")["status"], "active")
        listed = self.api.ok("GET", "/v1/subscriptions", [("customer", sub["customer"]),
                                                          ("expand[]", "data.schedule"),
                                                          ("expand[]", "data.latest_invoice")])
        self.assertEqual(listed["data"][0]["schedule"]["id"], sched["id"])
        self.assertEqual(listed["data"][0]["latest_invoice"]["id"], sub["latest_invoice"])
        self.assertEqual([e["data"]["object"]["id"] for e in self.events("subscription_schedule.created")],
                         [sched["id"]])

    def test_a_trialing_subscription_gives_the_phase_its_trial_end(self):
        sub = self.subscribe("leadgen_monthly", trial_period_days=14)
        sched = self.api.ok("POST", "/v1/subscription_schedules", {"from_subscription": sub["id"]})
        self.assertEqual(sched["phases"][0]["trial_end"], sub["trial_end"])
        self.assertEqual(sched["phases"][0]["end_date"], sub["trial_end"])

    def test_schedule_creation_refusals(self):
        sub = self.subscribe("leadgen_monthly")
        status, body = self.api.call("POST", "/v1/subscription_schedules", {
            "from_subscription": sub["id"], "phases[0][items][0][price]": self.prices["leadgen_monthly"]})
        self.assertEqual((status, body["error"]["type"], body["error"]["param"]), (400, "invalid_request_error", "phases"))
        self.api.ok("POST", "/v1/subscription_schedules", {"from_subscription": sub["id"]})
        status, body = self.api.call("POST", "/v1/subscription_schedules", {"from_subscription": sub["id"]})
        self.assertEqual(status, 400)
        self.assertIn("already attached", body["error"]["message"])
        other = self.subscribe("email_monthly")
        self.api.ok("DELETE", f"/v1/subscriptions/{other['id']}")
        status, body = self.api.call("POST", "/v1/subscription_schedules", {"from_subscription": other["id"]})
        self.assertEqual((status, body["error"]["param"]), (400, "from_subscription"))
        status, body = self.api.call("POST", "/v1/subscription_schedules", {"from_subscription": "sub_nope"})
        self.assertEqual((status, body["error"]["code"]), (400, "resource_missing"))
        status, body = self.api.call("POST", "/v1/subscription_schedules", {
            "from_subscription": sub["id"], "phases[0][iterations]": "1"})
        self.assertEqual((status, body["error"]["code"]), (400, "parameter_unknown"))

    def test_a_subscription_set_to_cancel_makes_a_schedule_that_cancels_at_the_period_end(self):
        sub = self.subscribe("leadgen_monthly")
        self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {"cancel_at_period_end": "true"})
        sched = self.api.ok("POST", "/v1/subscription_schedules", {"from_subscription": sub["id"]})
        self.assertEqual(sched["end_behavior"], "cancel")
        got = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")
        self.assertEqual((got["cancel_at_period_end"], got["cancel_at"]), (False, self.period(sub)[1]))

    def test_removing_a_module_at_the_period_end_keeps_it_until_then_and_renews_without_it(self):
        sub = self.subscribe("leadgen_monthly", "email_monthly")
        start, end = self.period(sub)
        sched, updated = self.schedule_removing(sub, ["leadgen_monthly"])
        self.assertEqual(len(updated["phases"]), 2)
        self.assertEqual((updated["phases"][1]["start_date"], updated["phases"][1]["end_date"]),
                         (end, next_month(end)))
        self.assertEqual([i["price"] for i in updated["phases"][1]["items"]], [self.prices["leadgen_monthly"]])
        self.assertEqual(updated["end_behavior"], "release")
        self.assertEqual(len(self.events("subscription_schedule.updated")), 1)
        # Nothing changes before the phase ends: both modules, no invoice.
        got = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")
        self.assertEqual(len(got["items"]["data"]), 2)
        self.assertEqual(got["latest_invoice"], sub["latest_invoice"])
        # A subscription managed by a schedule cannot change its cancellation directly.
        status, body = self.api.call("POST", f"/v1/subscriptions/{sub['id']}", {"cancel_at_period_end": "true"})
        self.assertEqual((status, body["error"]["param"]), (400, "cancel_at_period_end"))
        self.assertIn("managed by the subscription schedule", body["error"]["message"])
        before = len(self.events("customer.subscription.updated"))
        self.advance_to(end + 60)
        got = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}", {"expand[]": "latest_invoice"})
        self.assertEqual([i["price"]["id"] for i in got["items"]["data"]], [self.prices["leadgen_monthly"]])
        self.assertEqual(self.period(got), (end, next_month(end)))
        invoice = got["latest_invoice"]
        # The renewal of [end, next month] charges Lead Generation alone: $20.00.
        self.assertEqual([l["amount"] for l in invoice["lines"]["data"]], [2000])
        self.assertEqual((invoice["amount_due"], invoice["status"], invoice["billing_reason"]),
                         (2000, "paid", "subscription_cycle"))
        updates = self.events("customer.subscription.updated")[before:]
        self.assertTrue(any(len(e["data"].get("previous_attributes", {}).get("items", {}).get("data", [])) == 2
                            for e in updates), updates)
        sched_now = self.api.ok("GET", f"/v1/subscription_schedules/{sched['id']}")
        self.assertEqual(sched_now["current_phase"], {"start_date": end, "end_date": next_month(end)})
        self.assertEqual(len(self.events("subscription_schedule.updated")), 2)
        # The last phase ends: the schedule is released, the subscription goes on with its items.
        self.advance_to(next_month(end) + 60)
        sched_now = self.api.ok("GET", f"/v1/subscription_schedules/{sched['id']}")
        self.assertEqual((sched_now["status"], sched_now["released_subscription"], sched_now["subscription"],
                          sched_now["released_at"]), ("released", sub["id"], None, next_month(end)))
        got = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}", {"expand[]": "latest_invoice"})
        self.assertEqual((got["schedule"], got["status"]), (None, "active"))
        self.assertEqual(got["latest_invoice"]["amount_due"], 2000)
        self.assertEqual(len(self.events("subscription_schedule.released")), 1)

    def test_releasing_the_schedule_undoes_the_removal_and_the_renewal_charges_both(self):
        sub = self.subscribe("leadgen_monthly", "email_monthly")
        start, end = self.period(sub)
        sched, _ = self.schedule_removing(sub, ["leadgen_monthly"])
        released = self.api.ok("POST", f"/v1/subscription_schedules/{sched['id']}/release")
        self.assertEqual((released["status"], released["released_subscription"], released["subscription"]),
                         ("released", sub["id"], None))
        self.assertIsNotNone(released["released_at"])
        got = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")
        self.assertEqual((got["schedule"], len(got["items"]["data"])), (None, 2))
        self.assertEqual(len(self.events("subscription_schedule.released")), 1)
        last = self.events("customer.subscription.updated")[-1]
        self.assertEqual(last["data"]["previous_attributes"], {"schedule": sched["id"]})
        status, body = self.api.call("POST", f"/v1/subscription_schedules/{sched['id']}/release")
        self.assertEqual(status, 400)
        self.advance_to(end + 60)
        got = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}", {"expand[]": "latest_invoice"})
        # $20.00 + $49.00
        self.assertEqual(sorted(l["amount"] for l in got["latest_invoice"]["lines"]["data"]), [2000, 4900])
        self.assertEqual(got["latest_invoice"]["amount_paid"], 6900)
        # Released: cancel_at_period_end is the subscription's own again.
        self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {"cancel_at_period_end": "true"})

    def test_schedule_update_refusals(self):
        sub = self.subscribe("leadgen_monthly", "email_monthly")
        start, end = self.period(sub)
        sched = self.api.ok("POST", "/v1/subscription_schedules", {"from_subscription": sub["id"]})
        path = f"/v1/subscription_schedules/{sched['id']}"
        base = {"phases[0][items][0][price]": self.prices["leadgen_monthly"],
                "phases[0][items][1][price]": self.prices["email_monthly"],
                "phases[0][start_date]": start, "phases[0][end_date]": end,
                "phases[1][items][0][price]": self.prices["leadgen_monthly"],
                "phases[1][duration][interval]": "month", "phases[1][duration][interval_count]": 1}
        cases = [
            ({"phases[0][start_date]": start + 1}, "phases[0][start_date]", "start date of the current phase"),
            ({"phases[0][start_date]": start - 40 * DAY}, "phases[0][start_date]", "current phase"),
            ({"phases[1][start_date]": end + 5}, "phases[1][start_date]", "contiguous"),
            ({"phases[1][items][0][price]": self.prices["leadgen_monthly"],
              "phases[1][items][1][price]": self.prices["pro_yearly"]}, "phases[1][items]", "interval"),
            ({"phases[1][end_date]": next_month(end)}, "phases[1][duration]", "only specify one"),
        ]
        for change, param, text in cases:
            status, body = self.api.call("POST", path, dict(base, **change))
            self.assertEqual((status, body["error"].get("param")), (400, param), (change, body))
            self.assertIn(text, body["error"]["message"])
        no_items = {k: v for k, v in base.items() if not k.startswith("phases[1][items]")}
        status, body = self.api.call("POST", path, no_items)
        self.assertEqual((status, body["error"]["code"], body["error"]["param"]),
                         (400, "parameter_missing", "phases[1][items]"))
        no_start = {k: v for k, v in base.items() if k != "phases[0][start_date]"}
        status, body = self.api.call("POST", path, no_start)
        self.assertEqual((status, body["error"]["code"]), (400, "parameter_missing"))
        status, body = self.api.call("POST", path, dict(base, **{"phases[1][iterations]": "1"}))
        self.assertEqual((status, body["error"]["code"]), (400, "parameter_unknown"))
        # Unchanged by the refusals.
        self.assertEqual(len(self.api.ok("GET", path)["phases"]), 1)
        # After the first phase ended, it cannot be changed any more.
        self.api.ok("POST", path, base)
        self.advance_to(end + 60)
        ended = dict(base, **{"phases[0][items][1][quantity]": 3})
        status, body = self.api.call("POST", path, ended)
        self.assertEqual((status, body["error"]["param"]), (400, "phases[0]"))
        self.assertIn("already ended", body["error"]["message"])
        # The ended phase repeated unchanged, then the current one: accepted.
        self.api.ok("POST", path, base)

    def test_the_last_module_canceled_at_the_period_end_ends_then_and_undoing_renews(self):
        sub = self.subscribe("leadgen_monthly")
        start, end = self.period(sub)
        got = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", {"cancel_at_period_end": "true"})
        self.assertEqual((got["cancel_at_period_end"], got["status"]), (True, "active"))
        self.advance_to(end + 60)
        got = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")
        self.assertEqual((got["status"], got["ended_at"]), ("canceled", end))
        self.assertEqual([e["data"]["object"]["id"] for e in self.events("customer.subscription.deleted")], [sub["id"]])
        other = self.subscribe("email_monthly")
        start, end = self.period(other)
        self.api.ok("POST", f"/v1/subscriptions/{other['id']}", {"cancel_at_period_end": "true"})
        got = self.api.ok("POST", f"/v1/subscriptions/{other['id']}", {"cancel_at_period_end": "false"})
        self.assertEqual((got["cancel_at_period_end"], got["cancel_at"]), (False, None))
        self.advance_to(end + 60)
        got = self.api.ok("GET", f"/v1/subscriptions/{other['id']}", {"expand[]": "latest_invoice"})
        self.assertEqual((got["status"], got["latest_invoice"]["amount_paid"]), ("active", 4900))


    # ---- billing-portal configurations (the API) ---------------------------------------------

    def test_portal_configurations_create_list_retrieve_update(self):
        conf = self.api.ok("POST", "/v1/billing_portal/configurations", {
            "features[customer_update][enabled]": "true",
            "features[customer_update][allowed_updates][]": ["address", "tax_id"],
            "features[invoice_history][enabled]": "true",
            "features[payment_method_update][enabled]": "true",
            "features[subscription_cancel][enabled]": "true",
            "features[subscription_cancel][mode]": "at_period_end",
            "features[subscription_cancel][proration_behavior]": "none",
            "features[subscription_update][enabled]": "false",
            "business_profile[headline]": "PSS billing",
            "default_return_url": "https://app.test/billing", "metadata[app]": "pss"})
        self.assertEqual((conf["object"], conf["is_default"], conf["active"]),
                         ("billing_portal.configuration", False, True))
        self.assertTrue(conf["id"].startswith("bpc_"))
        self.assertEqual(conf["features"]["customer_update"], {"allowed_updates": ["address", "tax_id"], "enabled": True})
        self.assertEqual(conf["features"]["subscription_cancel"]["mode"], "at_period_end")
        self.assertFalse(conf["features"]["subscription_update"]["enabled"])
        self.assertEqual((conf["default_return_url"], conf["metadata"], conf["business_profile"]["headline"]),
                         ("https://app.test/billing", {"app": "pss"}, "PSS billing"))
        self.assertEqual(self.api.ok("GET", f"/v1/billing_portal/configurations/{conf['id']}")["id"], conf["id"])
        listed = self.api.ok("GET", "/v1/billing_portal/configurations", {"active": "true", "is_default": "false"})
        self.assertEqual([c["id"] for c in listed["data"]], [conf["id"]])
        self.assertEqual(self.api.ok("GET", "/v1/billing_portal/configurations", {"is_default": "true"})["data"], [])
        changed = self.api.ok("POST", f"/v1/billing_portal/configurations/{conf['id']}", {
            "features[subscription_cancel][mode]": "immediately", "active": "false"})
        self.assertEqual((changed["features"]["subscription_cancel"]["mode"], changed["active"]),
                         ("immediately", False))
        self.assertEqual(self.api.ok("GET", "/v1/billing_portal/configurations", {"active": "true"})["data"], [])

    def test_portal_configuration_refusals(self):
        status, body = self.api.call("POST", "/v1/billing_portal/configurations", {"default_return_url": "x"})
        self.assertEqual((status, body["error"]["code"], body["error"]["param"]), (400, "parameter_missing", "features"))
        status, body = self.api.call("POST", "/v1/billing_portal/configurations", {
            "features[subscription_update][enabled]": "true",
            "features[subscription_update][default_allowed_updates][]": "price"})
        self.assertEqual((status, body["error"]["param"]), (400, "features[subscription_update][products]"))
        status, body = self.api.call("POST", "/v1/billing_portal/configurations", {
            "features[invoice_history][enabled]": "maybe"})
        self.assertEqual((status, body["error"]["param"]), (400, "features[invoice_history][enabled]"))
        status, body = self.api.call("POST", "/v1/billing_portal/configurations", {
            "features[subscription_pause][enabled]": "true"})
        self.assertEqual((status, body["error"]["code"]), (400, "parameter_unknown"))
        status, body = self.api.call("POST", "/v1/billing_portal/configurations", {
            "features[invoice_history][enabled]": "true", "features[subscription_cancel][mode]": "at_period_end"})
        self.assertEqual((status, body["error"]["code"], body["error"]["param"]),
                         (400, "parameter_missing", "features[subscription_cancel][enabled]"))

    def test_a_portal_session_needs_a_configuration_or_the_default(self):
        cus = self.customer()
        status, body = self.api.call("POST", "/v1/billing_portal/sessions", {"customer": cus})
        self.assertEqual(status, 400)
        self.assertEqual(body["error"]["type"], "invalid_request_error")
        self.assertTrue(body["error"]["message"].startswith(
            "No configuration provided and your test mode default configuration has not been created."), body)
        status, body = self.api.call("POST", "/v1/billing_portal/sessions", {"customer": cus, "configuration": "bpc_nope"})
        self.assertEqual((status, body["error"]["code"], body["error"]["param"]), (400, "resource_missing", "configuration"))
        conf = self.api.ok("POST", "/v1/billing_portal/configurations", {
            "features[payment_method_update][enabled]": "true", "features[invoice_history][enabled]": "true",
            "default_return_url": "https://app.test/billing"})
        session = self.api.ok("POST", "/v1/billing_portal/sessions", {"customer": cus, "configuration": conf["id"]})
        self.assertEqual((session["configuration"], session["flow"], session["return_url"]),
                         (conf["id"], None, "https://app.test/billing"))
        deep = self.api.ok("POST", "/v1/billing_portal/sessions", {
            "customer": cus, "configuration": conf["id"], "return_url": "https://app.test/back",
            "flow_data[type]": "payment_method_update",
            "flow_data[after_completion][type]": "redirect",
            "flow_data[after_completion][redirect][return_url]": "https://app.test/card-saved"})
        self.assertEqual(deep["flow"]["type"], "payment_method_update")
        self.assertEqual(deep["flow"]["after_completion"], {"hosted_confirmation": None, "type": "redirect",
                                                            "redirect": {"return_url": "https://app.test/card-saved"}})
        status, body = self.api.call("POST", "/v1/billing_portal/sessions", {
            "customer": cus, "configuration": conf["id"], "flow_data[type]": "subscription_cancel",
            "flow_data[subscription_cancel][subscription]": "sub_x"})
        self.assertEqual((status, body["error"]["param"]), (400, "flow_data[type]"))
        self.api.ok("POST", f"/v1/billing_portal/configurations/{conf['id']}", {"active": "false"})
        status, body = self.api.call("POST", "/v1/billing_portal/sessions", {"customer": cus, "configuration": conf["id"]})
        self.assertEqual((status, body["error"]["param"]), (400, "configuration"))
        # A test seeds the account's default (as saving the portal settings in the Dashboard does).
        default = self.api.control("POST", "/_test/portal/default")
        self.assertTrue(default["is_default"])
        self.assertEqual(self.api.ok("POST", "/v1/billing_portal/sessions", {"customer": cus})["configuration"],
                         default["id"])

    # ---- switching the interval --------------------------------------------------------------

    def thirty_days_in_ten(self, sub):
        """Moves the current period to a 30-day one whose day 10 ended 100 s ago: (start, end, at)."""
        start = int(time.time()) - 10 * DAY - 100
        for item in sub["items"]["data"]:
            item["current_period_start"], item["current_period_end"] = start, start + 30 * DAY
        self.api.control("POST", "/_test/objects", sub)
        return start, start + 30 * DAY, start + 10 * DAY

    def preview_params(self, sub, at, behaviour="always_invoice"):
        params = {"customer": sub["customer"], "subscription": sub["id"],
                  "subscription_details[proration_behavior]": behaviour}
        for n, item in enumerate(sub["items"]["data"]):
            target = item["price"]["lookup_key"].replace("_monthly", "_yearly")
            params[f"subscription_details[items][{n}][id]"] = item["id"]
            params[f"subscription_details[items][{n}][price]"] = self.prices[target]
            params[f"subscription_details[items][{n}][quantity]"] = 1
        if at is not None:
            params["subscription_details[proration_date]"] = at
        return params

    def update_params(self, sub, at):
        params = {"proration_behavior": "always_invoice", "proration_date": at,
                  "payment_behavior": "pending_if_incomplete", "expand[]": "latest_invoice"}
        for n, item in enumerate(sub["items"]["data"]):
            target = item["price"]["lookup_key"].replace("_monthly", "_yearly")
            params[f"items[{n}][id]"] = item["id"]
            params[f"items[{n}][price]"] = self.prices[target]
        return params

    def test_switching_99_a_month_to_999_a_year_ten_days_in_credits_20_days_and_charges_a_year(self):
        sub = self.subscribe("pro_monthly", "leadgen_monthly")
        start, end, at = self.thirty_days_in_ten(sub)
        # By hand: Pro's unused 20 of 30 days: 9900 x 20/30 = 6600; Lead Generation's:
        # 2000 x 20/30 = 1333.33 -> 1333; the new prices in full: 99900 + 20000.
        # 99900 + 20000 - 6600 - 1333 = 111967.
        preview = self.api.ok("POST", "/v1/invoices/create_preview", self.preview_params(sub, at))
        self.assertEqual(sorted(l["amount"] for l in preview["lines"]["data"]), [-6600, -1333, 20000, 99900])
        self.assertEqual(preview["amount_due"], 111967)
        t0 = int(time.time())
        got = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", self.update_params(sub, at))
        t1 = int(time.time())
        invoice = got["latest_invoice"]
        self.assertEqual(sorted(l["amount"] for l in invoice["lines"]["data"]), [-6600, -1333, 20000, 99900])
        self.assertEqual((invoice["amount_due"], invoice["status"], invoice["billing_reason"]),
                         (111967, "paid", "subscription_update"))
        self.assertEqual([l["amount"] for l in preview["lines"]["data"]],
                         [l["amount"] for l in invoice["lines"]["data"]])
        credit = next(l for l in invoice["lines"]["data"] if l["amount"] == -6600)
        self.assertEqual(credit["period"], {"start": at, "end": end})
        self.assertTrue(credit["parent"]["subscription_item_details"]["proration"])
        # The billing cycle anchor is reset to now: the new period is [now, now + 1 year].
        self.assertEqual(sorted(i["price"]["id"] for i in got["items"]["data"]),
                         sorted([self.prices["pro_yearly"], self.prices["leadgen_yearly"]]))
        new_start, new_end = self.period(got)
        self.assertTrue(t0 <= new_start <= t1, (t0, new_start, t1))
        self.assertEqual(new_end, next_month_n(new_start, 12))
        self.assertEqual(got["billing_cycle_anchor"], new_start)
        self.assertEqual(got["pending_update"], None)

    def test_the_preview_without_prorations_is_the_new_period_without_credits(self):
        sub = self.subscribe("pro_monthly", "leadgen_monthly")
        self.thirty_days_in_ten(sub)
        preview = self.api.ok("POST", "/v1/invoices/create_preview", self.preview_params(sub, None, "none"))
        self.assertEqual(sorted(l["amount"] for l in preview["lines"]["data"]), [20000, 99900])
        self.assertEqual(preview["amount_due"], 119900)

    def test_automatic_tax_applies_to_the_switch_invoice(self):
        cus = self.customer(**{"address[country]": "DE", "address[line1]": "Hauptstr. 1",
                               "address[city]": "Berlin", "address[postal_code]": "10115"})
        sub = self.api.ok("POST", "/v1/subscriptions", {
            "customer": cus, "items[0][price]": self.prices["pro_monthly"],
            "items[1][price]": self.prices["leadgen_monthly"], "automatic_tax[enabled]": "true"})
        start, end, at = self.thirty_days_in_ten(sub)
        # DE 19 % on each line, half up: 99900 -> 18981, 20000 -> 3800, -6600 -> -1254,
        # -1333 -> -253.27 -> -253; tax 21274; total 111967 + 21274 = 133241.
        preview = self.api.ok("POST", "/v1/invoices/create_preview", self.preview_params(sub, at))
        got = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", self.update_params(sub, at))
        invoice = got["latest_invoice"]
        for inv in (preview, invoice):
            self.assertEqual(sum(t["amount"] for t in inv["total_taxes"]), 21274)
            self.assertEqual((inv["subtotal"], inv["total"], inv["amount_due"]), (111967, 133241, 133241))

    def test_a_declined_switch_leaves_the_items_with_a_pending_update(self):
        sub = self.subscribe("pro_monthly", pm="pm_card_chargeCustomerFail")
        self.assertEqual(sub["status"], "incomplete")
        sub = self.subscribe("pro_monthly")
        self.api.ok("POST", f"/v1/customers/{sub['customer']}",
                    {"invoice_settings[default_payment_method]": "pm_card_chargeCustomerFail"})
        start, end, at = self.thirty_days_in_ten(sub)
        got = self.api.ok("POST", f"/v1/subscriptions/{sub['id']}", self.update_params(sub, at))
        self.assertEqual([i["price"]["id"] for i in got["items"]["data"]], [self.prices["pro_monthly"]])
        self.assertEqual((got["latest_invoice"]["status"], got["latest_invoice"]["amount_due"]), ("open", 99900 - 6600))
        self.assertIsNotNone(got["pending_update"])
        self.assertEqual([i["price"]["id"] for i in got["pending_update"]["subscription_items"]],
                         [self.prices["pro_yearly"]])
        self.assertEqual(self.period(got), (start, end))


class LocalPortal(unittest.TestCase):
    """With --upstream (localstripe keeps customers and cards): the hosted portal and invoice pages."""

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
        self.prices = {}
        product = self.api.ok("POST", "/v1/products", {"name": "Lead Generation"})
        self.product = product["id"]
        for key, amount, interval in (("monthly", 2000, "month"), ("yearly", 20000, "year")):
            self.prices[key] = self.api.ok("POST", "/v1/prices", {
                "currency": "usd", "product": product["id"], "unit_amount": amount,
                "recurring[interval]": interval, "lookup_key": f"leadgen_{key}"})["id"]

    def configuration(self, **extra):
        params = {"features[invoice_history][enabled]": "true",
                  "features[payment_method_update][enabled]": "true",
                  "features[customer_update][enabled]": "true",
                  "features[customer_update][allowed_updates][]": ["address", "tax_id"],
                  "features[subscription_cancel][enabled]": "true",
                  "features[subscription_cancel][mode]": "at_period_end",
                  "features[subscription_update][enabled]": "false"}
        params.update(extra)
        return self.api.ok("POST", "/v1/billing_portal/configurations", params)

    def checkout(self):
        customer = self.api.ok("POST", "/v1/customers", {"email": "owner@example.com"})["id"]
        session = self.api.ok("POST", "/v1/checkout/sessions", {
            "mode": "subscription", "customer": customer, "success_url": "http://app.test/done",
            "line_items[0][price]": self.prices["monthly"], "line_items[0][quantity]": "1"})
        status, _ = self.api.form(session["url"], {"card": "4242424242424242", "exp": "12/34", "cvc": "123"})
        self.assertEqual(status, 303)
        return customer, self.api.ok("GET", "/v1/subscriptions", {"customer": customer})["data"][0]

    def page(self, url):
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.read().decode()

    def test_the_portal_offers_only_what_its_configuration_enables_and_cancels_at_period_end(self):
        customer, sub = self.checkout()
        conf = self.configuration()
        session = self.api.ok("POST", "/v1/billing_portal/sessions", {"customer": customer, "configuration": conf["id"]})
        html = self.page(session["url"])
        for text in ("Cancel at period end", "Invoice history", "Add card", "VAT number", "Billing information"):
            self.assertIn(text, html)
        self.assertNotIn("Switch to", html)
        self.assertNotIn("Cancel now", html)
        status, _ = self.api.form(session["url"], {"action": "switch", "subscription": sub["id"]})
        self.assertEqual(status, 200)
        self.assertEqual(self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")["items"]["data"][0]["price"]["id"],
                         self.prices["monthly"])
        status, _ = self.api.form(session["url"], {"action": "cancel_now", "subscription": sub["id"]})
        self.assertEqual(self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")["status"], "active")
        status, where = self.api.form(session["url"], {"action": "cancel_at_period_end", "subscription": sub["id"]})
        self.assertEqual(status, 303, where)
        got = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")
        self.assertEqual((got["cancel_at_period_end"], got["status"]), (True, "active"))
        self.api.control("POST", "/_test/clock", {"to": got["items"]["data"][0]["current_period_end"] + 60})
        self.assertEqual(self.api.ok("GET", f"/v1/subscriptions/{sub['id']}")["status"], "canceled")

    def test_the_switch_is_offered_only_with_subscription_update_and_its_prices(self):
        customer, sub = self.checkout()
        conf = self.configuration(**{
            "features[subscription_update][enabled]": "true",
            "features[subscription_update][default_allowed_updates][]": "price",
            "features[subscription_update][products][0][product]": self.product,
            "features[subscription_update][products][0][prices][]": [self.prices["monthly"], self.prices["yearly"]]})
        session = self.api.ok("POST", "/v1/billing_portal/sessions", {"customer": customer, "configuration": conf["id"]})
        self.assertIn("Switch to yearly", self.page(session["url"]))

    def test_a_payment_method_update_deep_link_offers_the_card_alone_then_redirects(self):
        customer, _ = self.checkout()
        conf = self.configuration()
        session = self.api.ok("POST", "/v1/billing_portal/sessions", {
            "customer": customer, "configuration": conf["id"], "flow_data[type]": "payment_method_update",
            "flow_data[after_completion][type]": "redirect",
            "flow_data[after_completion][redirect][return_url]": "https://app.test/card-saved"})
        html = self.page(session["url"])
        self.assertIn("Add card", html)
        for text in ("Cancel at period end", "Invoice history", "Billing information"):
            self.assertNotIn(text, html)
        status, where = self.api.form(session["url"], {"action": "card", "card": "5555555555554444",
                                                      "exp": "12/34", "cvc": "123"})
        self.assertEqual((status, where), (303, "https://app.test/card-saved"))

    def test_a_declined_renewal_leaves_it_past_due_until_paid_on_the_hosted_invoice_page(self):
        customer, sub = self.checkout()
        conf = self.configuration()
        session = self.api.ok("POST", "/v1/billing_portal/sessions", {"customer": customer, "configuration": conf["id"]})
        # The card 4000 0000 0000 0341 attaches, then every charge to it is declined.
        status, _ = self.api.form(session["url"], {"action": "card", "card": "4000000000000341",
                                                  "exp": "12/34", "cvc": "123"})
        self.assertEqual(status, 303)
        end = sub["items"]["data"][0]["current_period_end"]
        self.api.control("POST", "/_test/clock", {"to": end + 60})
        got = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}", {"expand[]": "latest_invoice"})
        invoice = got["latest_invoice"]
        self.assertEqual((got["status"], invoice["status"], invoice["amount_due"], invoice["amount_paid"]),
                         ("past_due", "open", 2000, 0))
        self.assertTrue(invoice["hosted_invoice_url"].startswith(self.api.base + "/i/"))
        kinds = [e["type"] for e in self.api.control("GET", "/_test/events")]
        self.assertIn("invoice.payment_failed", kinds)
        self.assertIn("Amount due", self.page(invoice["hosted_invoice_url"]))
        status, _ = self.api.form(invoice["hosted_invoice_url"], {"action": "card", "card": "4000000000000002",
                                                                  "exp": "12/34", "cvc": "123"})
        self.assertEqual(status, 402)
        status, _ = self.api.form(invoice["hosted_invoice_url"], {"action": "card", "card": "4242424242424242",
                                                                  "exp": "12/34", "cvc": "123"})
        self.assertEqual(status, 303)
        got = self.api.ok("GET", f"/v1/subscriptions/{sub['id']}", {"expand[]": "latest_invoice"})
        self.assertEqual((got["status"], got["latest_invoice"]["status"], got["latest_invoice"]["amount_paid"]),
                         ("active", "paid", 2000))
        events = self.api.control("GET", "/_test/events")
        paid = [e for e in events if e["type"] == "invoice.paid" and e["data"]["object"]["id"] == invoice["id"]]
        self.assertEqual(len(paid), 1)
        back = [e for e in events if e["type"] == "customer.subscription.updated"
                and e["data"]["object"]["status"] == "active"
                and e["data"].get("previous_attributes", {}).get("status") == "past_due"]
        self.assertEqual(len(back), 1)


if __name__ == "__main__":
    unittest.main()
