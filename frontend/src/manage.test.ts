import { describe, expect, it } from "vitest";
import { BillingApiError, type PlanPreview, type Subscription, type SubscriptionOverview } from "./api/billing";
import {
  itemEndsAt,
  keptText,
  moduleErrorMessage,
  moduleRows,
  pastDueMessage,
  pastDueNotices,
  planInterval,
  portalErrorMessage,
  removeConfirmText,
  removedText,
  switchConfirmLabel,
  switchErrorMessage,
  switchLabel,
  switchLineLabel,
  switchNeedsNewPreview,
  switchSummary,
  switchTarget,
  switchedText,
} from "./manage";

const catalog = [
  { id: "LeadGeneration", name: "Lead Generation" },
  { id: "EmailAutomation", name: "Email Automation" },
] as const;

// 2027-01-01 and 2027-01-08 00:00 UTC.
const JAN_1 = 1_798_761_600;
const JAN_8 = JAN_1 + 7 * 86_400;

function sub(over: Partial<Subscription> = {}): Subscription {
  return {
    id: "sub_1",
    status: "active",
    currentPeriodStart: JAN_1 - 31 * 86_400,
    currentPeriodEnd: JAN_1,
    cancelAtPeriodEnd: false,
    cancelAt: null,
    trialEnd: null,
    gracePeriodEnd: null,
    trialWillEnd: false,
    interval: "month",
    openInvoice: null,
    items: [
      { module: "LeadGeneration", interval: "month", quantity: 1, priceId: "price_lg", unitAmount: 9900, currency: "usd", paidThrough: JAN_1, endsAt: null },
      { module: "EmailAutomation", interval: "month", quantity: 1, priceId: "price_ea", unitAmount: 4900, currency: "usd", paidThrough: JAN_1, endsAt: JAN_1 },
    ],
    ...over,
  };
}

function overview(subs: Subscription[]): SubscriptionOverview {
  return { status: subs[0]?.status ?? "none", subscriptions: subs, entitlements: [], trialDays: 0, trialedModules: [] };
}

const err = (status: number, code: string, message = "API words.") => new BillingApiError(status, code, message);

describe("module rows", () => {
  it("names each module with its price and says when it renews or ends", () => {
    const rows = moduleRows(sub(), catalog, "en-US");
    expect(rows.map((r) => [r.name, r.line, r.dateText, r.canRemove, r.canKeep])).toEqual([
      ["Lead Generation", "Lead Generation — $99.00 / month", "Renews on Jan 1, 2027", true, false],
      ["Email Automation", "Email Automation — $49.00 / month", "Ends on Jan 1, 2027", false, true],
    ]);
  });
  it("ends every module of a plan that cancels at period end, and offers to keep each", () => {
    const canceling = sub({ cancelAtPeriodEnd: true, cancelAt: JAN_8, items: [{ ...sub().items[0]!, endsAt: null }] });
    expect(itemEndsAt(canceling.items[0]!, canceling)).toBe(JAN_8);
    const [row] = moduleRows(canceling, catalog, "en-US");
    expect(row).toMatchObject({ ending: true, dateText: "Ends on Jan 8, 2027", canRemove: false, canKeep: true });
  });
  it("falls back to the period end when an older API sends no paidThrough, and offers nothing on a past-due plan", () => {
    const old = sub({ status: "past_due", items: [{ module: "LeadGeneration", interval: "month", quantity: 1, priceId: "p", unitAmount: 9900, currency: "usd", paidThrough: null, endsAt: null }] });
    expect(moduleRows(old, catalog, "en-US")[0]).toMatchObject({ dateText: "Renews on Jan 1, 2027", canRemove: false, canKeep: false });
  });
  it("shows no renewal for a canceled plan, and never an id", () => {
    const row = moduleRows(sub({ status: "canceled", items: [{ ...sub().items[0]!, endsAt: null, module: "SocialInbox" }] }), catalog)[0];
    expect(row?.dateText).toBeNull();
    expect(row?.name).toBe("SocialInbox"); // not in this catalog: the id is all there is
  });
});

describe("removing and keeping", () => {
  it("promises what the removal keeps", () => {
    expect(removeConfirmText("Email Automation", JAN_1, "en-US")).toBe("You keep Email Automation until Jan 1, 2027 and are not charged for it again.");
    expect(removeConfirmText("Email Automation", null)).toBe("You keep Email Automation until the end of the period you paid for and are not charged for it again.");
    expect(removedText("Email Automation", JAN_1, "en-US")).toBe("Email Automation ends on Jan 1, 2027. Until then you keep using it.");
    expect(keptText("Email Automation", JAN_1, "en-US")).toBe("Email Automation stays on your plan and renews on Jan 1, 2027. Nothing was charged.");
  });
  it("words the errors", () => {
    expect(moduleErrorMessage(err(404, "not_subscribed"), "Email Automation")).toBe("Email Automation is no longer on your plan. Reload the page to see what you have.");
    expect(moduleErrorMessage(err(409, "payment_past_due"), "Email Automation")).toMatch(/^Your plan has a payment past due/);
    expect(moduleErrorMessage(err(403, "forbidden"), "Email Automation")).toBe("Only an Owner or Admin of your organization can change its plan.");
    expect(moduleErrorMessage(err(400, "whatever", "The API's own words."), "X")).toBe("The API's own words.");
  });
});

describe("switching the interval", () => {
  const preview: PlanPreview = {
    mode: "switch",
    interval: "year",
    currency: "usd",
    services: ["LeadGeneration", "EmailAutomation"],
    prorationDate: JAN_1 - 10 * 86_400,
    amountDueToday: 133_000,
    nextInvoice: { amount: 149_800, date: JAN_1 + 355 * 86_400 },
    trialDays: null,
    lines: [
      { description: "Unused time on Lead Generation", amount: -3_200, service: "LeadGeneration", proration: true, periodStart: JAN_1 - 10 * 86_400, periodEnd: JAN_1 },
      { description: "1 × Lead Generation (at $999.00 / year)", amount: 99_900, service: "LeadGeneration", proration: false, periodStart: JAN_1, periodEnd: JAN_1 + 365 * 86_400 },
      { description: "Tax", amount: 100, service: null, proration: false, periodStart: null, periodEnd: null },
    ],
  };
  it("finds the other interval, from the plan or its items", () => {
    const renewing = (over: Partial<Subscription> = {}) => sub({ items: sub().items.map((i) => ({ ...i, endsAt: null })), ...over });
    expect(switchTarget(renewing())).toBe("year");
    expect(switchTarget(renewing({ interval: "year" }))).toBe("month");
    expect(planInterval(sub({ interval: undefined }))).toBe("month");
    expect(switchTarget(renewing({ status: "past_due" }))).toBeNull();
    expect(switchTarget(sub({ items: [] }))).toBeNull();
    // Not while the plan cancels or a module of it is set to end: "Keep" comes first.
    expect(switchTarget(renewing({ cancelAtPeriodEnd: true }))).toBeNull();
    expect(switchTarget(sub())).toBeNull();
    expect(switchLabel("year")).toBe("Switch to yearly");
    expect(switchLabel("month")).toBe("Switch to monthly");
  });
  it("says what is charged today and from when", () => {
    expect(switchSummary(preview, "en-US")).toBe("$1,330.00 today (credit for unused time included), then $1,498.00 per year from Dec 22, 2027");
    expect(switchConfirmLabel(preview, "en-US")).toBe("Switch and pay $1,330.00");
    expect(switchConfirmLabel({ ...preview, amountDueToday: 0 })).toBe("Switch to yearly");
    expect(switchedText("year", 133_000, "usd", "en-US")).toBe("Your plan is now billed yearly. $1,330.00 was charged today.");
    expect(switchedText("month", 0, "usd")).toBe("Your plan is now billed monthly. Nothing was charged today.");
  });
  it("names the module of each line", () => {
    expect(preview.lines.map((l) => switchLineLabel(l, catalog))).toEqual([
      "Lead Generation: credit for unused time",
      "Lead Generation: Jan 1, 2027 – Jan 1, 2028",
      "Tax",
    ]);
  });
  it("words each refusal", () => {
    expect(switchNeedsNewPreview(err(409, "preview_expired"))).toBe(true);
    expect(switchNeedsNewPreview(err(409, "plan_exists"))).toBe(false);
    expect(switchErrorMessage(err(409, "change_scheduled"), "year", sub(), catalog, "en-US")).toBe(
      "A module of your plan is set to end: Email Automation (ends Jan 1, 2027). Keep it first, or switch to yearly after that date.",
    );
    expect(switchErrorMessage(err(409, "change_scheduled"), "year")).toBe("A module of your plan is set to end. Keep it first, or switch to yearly after that date.");
    expect(switchErrorMessage(err(402, "payment_incomplete"), "year")).toMatch(/Pay on the invoice page/);
    expect(switchErrorMessage(err(409, "plan_exists"), "year")).toMatch(/^Your organization already has a yearly plan/);
    expect(switchErrorMessage(err(409, "plan_canceling"), "month")).toMatch(/set to cancel/);
    expect(switchErrorMessage(err(409, "payment_past_due"), "month")).toBe("A payment of your plan is past due. Pay it first, then switch to monthly.");
    expect(switchErrorMessage(err(409, "already_on_interval"), "year")).toBe("Your plan is already billed yearly. Reload the page to see it.");
    expect(switchErrorMessage(err(0, "network_error"), "year")).toMatch(/could not be reached/);
  });
});

describe("the past-due banner", () => {
  const invoice = { id: "in_1", amountDue: 14_800, currency: "usd", hostedInvoiceUrl: "https://invoice.stripe.test/i/in_1", dueDate: null };
  it("says what failed and until when access lasts", () => {
    expect(pastDueMessage({ status: "past_due", gracePeriodEnd: JAN_8 }, invoice, "en-US")).toBe(
      "Your payment of $148.00 failed. Pay now to keep your modules; access ends on Jan 8, 2027.",
    );
    expect(pastDueMessage({ status: "unpaid", gracePeriodEnd: JAN_8 }, invoice, "en-US")).toBe("Your payment of $148.00 failed. Pay now to keep your modules.");
  });
  it("lists only subscriptions waiting for a payment with an open invoice", () => {
    const notices = pastDueNotices(
      overview([
        sub({ id: "sub_due", status: "past_due", gracePeriodEnd: JAN_8, openInvoice: invoice }),
        sub({ id: "sub_ok", openInvoice: null }),
        sub({ id: "sub_no_invoice", status: "past_due" }),
        sub({ id: "sub_unpaid", status: "unpaid", gracePeriodEnd: JAN_8, openInvoice: { ...invoice, hostedInvoiceUrl: "javascript:alert(1)" } }),
      ]),
      "en-US",
    );
    expect(notices.map((n) => [n.subscriptionId, n.accessEnds, n.invoice.hostedInvoiceUrl])).toEqual([
      ["sub_due", JAN_8, "https://invoice.stripe.test/i/in_1"],
      ["sub_unpaid", null, null],
    ]);
    expect(pastDueNotices(null)).toEqual([]);
  });
  it("words the portal's refusal", () => {
    expect(portalErrorMessage(err(503, "portal_unavailable"))).toMatch(/^The billing portal is not available right now/);
  });
});
