import { describe, expect, it } from "vitest";
import { BillingApiError, type PlanPreview, type SubscriptionItem, type SubscriptionOverview } from "./api/billing";
import {
  confirmLabel,
  formatAmount,
  hasPlan,
  itemLine,
  moduleNames,
  needsNewPreview,
  planErrorMessage,
  planTotal,
  previewSummary,
} from "./plan";

const catalog = [
  { id: "LeadGeneration", name: "Lead Generation" },
  { id: "EmailAutomation", name: "Email Automation" },
  { id: "SocialInbox", name: "Social Inbox" },
] as const;

// $49/month added 10 days into a 30-day period: 20/30 × 4900 = 3266.67 → 3267 cents today; the
// plan then renews at $99 + $49 = $148 on 1767225600 (2026-01-01 00:00 UTC).
const preview: PlanPreview = {
  mode: "add",
  interval: "month",
  currency: "usd",
  services: ["EmailAutomation"],
  prorationDate: 1_765_497_600,
  amountDueToday: 3267,
  nextInvoice: { amount: 14800, date: 1_767_225_600 },
  trialDays: null,
  lines: [
    {
      description: "Remaining time on 1 × Email Automation after 12 Dec 2025",
      amount: 3267,
      service: "EmailAutomation",
      proration: true,
      periodStart: 1_765_497_600,
      periodEnd: 1_767_225_600,
    },
  ],
};

describe("formatAmount", () => {
  it("always shows the cents, as a charge is made", () => {
    expect(formatAmount(14800, "usd", "en-US")).toBe("$148.00");
    expect(formatAmount(3267, "usd", "en-US")).toBe("$32.67");
    expect(formatAmount(5, "usd", "en-US")).toBe("$0.05");
    expect(formatAmount(-525, "usd", "en-US")).toBe("-$5.25");
  });
  it("knows zero-decimal currencies and follows the locale", () => {
    expect(formatAmount(500, "jpy", "en-US")).toBe("¥500");
    expect(formatAmount(14800, "usd", "de-DE")).toBe("148,00\u00a0$");
  });
});

describe("the preview in words", () => {
  it("says what is charged today and from when the plan renews at what", () => {
    expect(previewSummary(preview, "en-US")).toBe("$32.67 today, then $148.00 per month from Jan 1, 2026");
    expect(confirmLabel(preview, "en-US")).toBe("Confirm and pay $32.67");
  });
  it("says per year for a yearly plan, and no date when there is none", () => {
    const yearly = { ...preview, interval: "year" as const, amountDueToday: 41_589, nextInvoice: { amount: 148_900, date: null } };
    expect(previewSummary(yearly, "en-US")).toBe("$415.89 today, then $1,489.00 per year");
  });
  it("asks only to confirm when nothing is due today", () => {
    expect(confirmLabel({ ...preview, amountDueToday: 0 }, "en-US")).toBe("Confirm");
  });
});

describe("moduleNames", () => {
  it("uses the catalog's names in a sentence", () => {
    expect(moduleNames(["EmailAutomation"], catalog, "en-US")).toBe("Email Automation");
    expect(moduleNames(["EmailAutomation", "SocialInbox"], catalog, "en-US")).toBe("Email Automation and Social Inbox");
    expect(moduleNames(["LeadGeneration", "EmailAutomation", "SocialInbox"], catalog, "en-US")).toBe(
      "Lead Generation, Email Automation, and Social Inbox",
    );
  });
  it("falls back to the id for a module the catalog does not name", () => {
    expect(moduleNames(["Integrations"], catalog, "en-US")).toBe("Integrations");
  });
});

function overview(status: SubscriptionOverview["subscriptions"][number]["status"], interval: "month" | "year"): SubscriptionOverview {
  return {
    status,
    entitlements: [],
    subscriptions: [
      {
        id: "sub_1",
        status,
        currentPeriodStart: 1_764_547_200,
        currentPeriodEnd: 1_767_225_600,
        cancelAtPeriodEnd: false,
        cancelAt: null,
        trialEnd: null,
        gracePeriodEnd: null,
        trialWillEnd: false,
        interval,
        openInvoice: null,
        items: [{ module: "LeadGeneration", interval, quantity: 1, priceId: "price_lg", unitAmount: 9900, currency: "usd", paidThrough: null, endsAt: null }],
      },
    ],
    trialDays: 14,
    trialedModules: [],
  };
}

describe("hasPlan", () => {
  it("is a live subscription of that interval", () => {
    expect(hasPlan(overview("active", "month"), "month")).toBe(true);
    expect(hasPlan(overview("active", "month"), "year")).toBe(false);
    expect(hasPlan(overview("past_due", "year"), "year")).toBe(true);
    expect(hasPlan(overview("trialing", "month"), "month")).toBe(true);
  });
  it("is not an ended or unpaid subscription, nor no overview", () => {
    expect(hasPlan(overview("canceled", "month"), "month")).toBe(false);
    expect(hasPlan(overview("incomplete", "month"), "month")).toBe(false);
    expect(hasPlan(null, "month")).toBe(false);
  });
});

describe("planErrorMessage", () => {
  const err = (status: number, code: string, message = "The server's words.") => new BillingApiError(status, code, message);
  it("puts each code of the add and preview calls in words", () => {
    expect(planErrorMessage(err(402, "payment_incomplete"), "month")).toBe(
      "The payment did not go through (the card was declined or needs you to confirm it), so nothing was added to your plan yet. Pay or confirm it on the invoice: the modules are added once it is paid.",
    );
    expect(planErrorMessage(err(409, "payment_pending"), "month")).toBe(
      "An earlier addition to your plan is still waiting for payment. Finish paying that invoice before adding more.",
    );
    expect(planErrorMessage(err(409, "payment_past_due"), "year")).toBe(
      "Your yearly plan has a payment past due. Pay it first (Pay now, at the top of the page) before adding modules.",
    );
    expect(planErrorMessage(err(409, "already_subscribed"), "month")).toBe(
      "Your organization already has one of these modules. Reload the page to see what you have.",
    );
    expect(planErrorMessage(err(409, "no_subscription"), "month")).toBe(
      "Your organization no longer has a monthly plan to add to, so these modules need a new subscription through Checkout.",
    );
    expect(planErrorMessage(err(409, "plan_exists"), "month")).toBe(
      "Your organization already has a monthly plan: add the modules to it instead of subscribing again.",
    );
    expect(planErrorMessage(err(409, "preview_expired"), "month")).toMatch(/^The price changed since it was shown/);
    expect(planErrorMessage(err(422, "invalid_services"), "month")).toBe(
      "One of the chosen modules cannot be bought. Reload the page and choose again.",
    );
    expect(planErrorMessage(err(422, "invalid_interval"), "month")).toBe("That billing period is not offered. Choose monthly or yearly.");
  });
  it("words the statuses, and keeps the server's words for anything else", () => {
    expect(planErrorMessage(err(403, "forbidden"), "month")).toBe("Only an Owner or Admin of your organization can change its plan.");
    expect(planErrorMessage(err(503, "unavailable"), "month")).toBe(
      "Billing or Stripe is unavailable for a moment. Try again shortly.",
    );
    expect(planErrorMessage(err(0, "network_error"), "month")).toBe(
      "The billing service could not be reached. Check your connection, then your plan, and try again.",
    );
    expect(planErrorMessage(err(400, "bad_request", "The body is not JSON."), "month")).toBe("The body is not JSON.");
  });
  it("asks for a new preview when the figures shown are stale", () => {
    expect(["preview_expired", "invalid_proration_date", "no_subscription", "payment_incomplete"].map((c) => needsNewPreview(err(409, c)))).toEqual(
      [true, true, true, false],
    );
  });
});

describe("the plan's items", () => {
  const item = (module: SubscriptionItem["module"], unitAmount: number | null, extra: Partial<SubscriptionItem> = {}): SubscriptionItem => ({
    module,
    interval: "month",
    quantity: 1,
    priceId: `price_${module}`,
    unitAmount,
    currency: unitAmount === null ? null : "usd",
    paidThrough: null,
    endsAt: null,
    ...extra,
  });
  it("names each module with its price per period", () => {
    expect(itemLine(item("EmailAutomation", 4900), catalog, "en-US")).toBe("Email Automation — $49.00 / month");
    expect(itemLine(item("EmailAutomation", 49_900, { interval: "year" }), catalog, "en-US")).toBe("Email Automation — $499.00 / year");
    expect(itemLine(item("SocialInbox", 7900, { quantity: 2 }), catalog, "en-US")).toBe("Social Inbox × 2 — $158.00 / month");
  });
  it("says what it knows when the price is unknown", () => {
    expect(itemLine(item("EmailAutomation", null), catalog, "en-US")).toBe("Email Automation (monthly)");
    expect(itemLine(item(null, null, { interval: null }), catalog, "en-US")).toBe("Unknown price");
  });
  it("totals one interval's items, and gives up on mixed or unknown prices", () => {
    expect(planTotal([item("LeadGeneration", 9900), item("EmailAutomation", 4900)])).toEqual({ amount: 14800, currency: "usd", interval: "month" });
    expect(planTotal([item("LeadGeneration", 9900), item("EmailAutomation", null)])).toBeNull();
    expect(planTotal([])).toBeNull();
  });
});
