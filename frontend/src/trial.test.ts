import { describe, expect, it } from "vitest";
import type { PlanPreview, Subscription, SubscriptionOverview } from "./api/billing";
import {
  endingTrials,
  moduleOffersTrial,
  trialBadge,
  trialCallToAction,
  trialEndingMessage,
  trialNote,
  trialOffer,
  trialStatus,
  trialUsedNote,
  withPreview,
} from "./trial";

const catalog = [
  { id: "LeadGeneration", name: "Lead Generation" },
  { id: "EmailAutomation", name: "Email Automation" },
  { id: "SocialInbox", name: "Social Inbox" },
] as const;

// 2026-12-01 00:00 UTC; 14 days later is 2026-12-15 00:00 UTC (1_796_083_200 + 14 × 86_400).
const NOW = 1_796_083_200;
const IN_14_DAYS = 1_797_292_800;

function overview(trialDays: number, trialedModules: SubscriptionOverview["trialedModules"] = [], subscriptions: Subscription[] = []): SubscriptionOverview {
  return { status: subscriptions.length ? "trialing" : "none", entitlements: [], subscriptions, trialDays, trialedModules };
}

function trialing(extra: Partial<Subscription> = {}): Subscription {
  return {
    id: "sub_t",
    status: "trialing",
    currentPeriodStart: NOW,
    currentPeriodEnd: IN_14_DAYS,
    cancelAtPeriodEnd: false,
    cancelAt: null,
    trialEnd: IN_14_DAYS,
    gracePeriodEnd: null,
    trialWillEnd: false,
    interval: "month",
    openInvoice: null,
    items: [{ module: "LeadGeneration", interval: "month", quantity: 1, priceId: "price_lg", unitAmount: 9900, currency: "usd", paidThrough: null, endsAt: null }],
    ...extra,
  };
}

const checkoutPreview: PlanPreview = {
  mode: "checkout",
  interval: "month",
  currency: "usd",
  services: ["LeadGeneration"],
  prorationDate: null,
  amountDueToday: 0,
  nextInvoice: { amount: 9900, date: IN_14_DAYS + 60 },
  lines: [],
  trialDays: 14,
};

describe("trialOffer", () => {
  it("offers a trial of the deployment's length when no selected module was trialled", () => {
    expect(trialOffer(overview(14), ["LeadGeneration"], NOW)).toEqual({ kind: "trial", days: 14, endsAt: IN_14_DAYS });
    expect(trialOffer(overview(7, ["SocialInbox"]), ["LeadGeneration", "EmailAutomation"], NOW)).toEqual({
      kind: "trial",
      days: 7,
      endsAt: NOW + 7 * 86_400,
    });
  });
  it("offers none when one selected module had its trial: the whole checkout is charged", () => {
    expect(trialOffer(overview(14, ["EmailAutomation"]), ["LeadGeneration", "EmailAutomation"], NOW)).toEqual({
      kind: "used",
      used: ["EmailAutomation"],
    });
  });
  it("offers none with trials off, nothing selected, or no overview", () => {
    expect(trialOffer(overview(0), ["LeadGeneration"], NOW)).toEqual({ kind: "none" });
    expect(trialOffer(overview(14), [], NOW)).toEqual({ kind: "none" });
    expect(trialOffer(null, ["LeadGeneration"], NOW)).toEqual({ kind: "none" });
  });
  it("reads an overview without the trial fields (an older API) as no trials", () => {
    const old = { status: "none", entitlements: [], subscriptions: [] } as unknown as SubscriptionOverview;
    expect(trialOffer(old, ["LeadGeneration"], NOW)).toEqual({ kind: "none" });
    expect(moduleOffersTrial(old, "LeadGeneration", false)).toBe(false);
  });
});

describe("withPreview", () => {
  const offered = trialOffer(overview(14), ["LeadGeneration"], NOW);
  it("takes the trial's end from the preview's first charge", () => {
    expect(withPreview(offered, checkoutPreview, NOW)).toEqual({ kind: "trial", days: 14, endsAt: IN_14_DAYS + 60 });
  });
  it("drops the trial when the preview starts none", () => {
    expect(withPreview(offered, { ...checkoutPreview, trialDays: null, amountDueToday: 9900 }, NOW)).toEqual({ kind: "none" });
    const used = trialOffer(overview(14, ["LeadGeneration"]), ["LeadGeneration"], NOW);
    expect(withPreview(used, { ...checkoutPreview, trialDays: null }, NOW)).toEqual(used);
  });
  it("ignores an add-mode preview and a missing one", () => {
    expect(withPreview(offered, { ...checkoutPreview, mode: "add", trialDays: null, prorationDate: NOW }, NOW)).toEqual(offered);
    expect(withPreview(offered, null, NOW)).toEqual(offered);
  });
});

describe("moduleOffersTrial", () => {
  it("is on for a module never trialled with no plan of the interval to join", () => {
    expect(moduleOffersTrial(overview(14, ["LeadGeneration"]), "EmailAutomation", false)).toBe(true);
    expect(moduleOffersTrial(overview(14, ["LeadGeneration"]), "LeadGeneration", false)).toBe(false);
    expect(moduleOffersTrial(overview(14), "EmailAutomation", true)).toBe(false);
    expect(moduleOffersTrial(overview(0), "EmailAutomation", false)).toBe(false);
    expect(moduleOffersTrial(null, "EmailAutomation", false)).toBe(false);
  });
});

describe("the trial in words", () => {
  it("names the call to action and the card's badge by the trial's length", () => {
    expect(trialCallToAction(14)).toBe("Start 14-day free trial");
    expect(trialBadge(30)).toBe("30-day free trial");
  });
  it("says no card is needed and when to add one", () => {
    expect(trialNote(IN_14_DAYS, 1, "en-US")).toBe("No card needed. The trial ends on Dec 15, 2026; add a card before then to keep it.");
    expect(trialNote(IN_14_DAYS, 2, "en-US")).toBe("No card needed. The trial ends on Dec 15, 2026; add a card before then to keep them.");
  });
  it("says whose trial was used", () => {
    expect(trialUsedNote(["EmailAutomation"], catalog, "en-US")).toBe("Email Automation's trial was used, so this checkout is charged today.");
    expect(trialUsedNote(["EmailAutomation", "SocialInbox"], catalog, "en-US")).toBe(
      "The trials of Email Automation and Social Inbox were used, so this checkout is charged today.",
    );
  });
  it("states a trialing subscription's end, and nothing for other statuses", () => {
    expect(trialStatus(trialing(), "en-US")).toBe("Free trial until Dec 15, 2026");
    expect(trialStatus(trialing({ trialEnd: null }), "en-US")).toBe("Free trial");
    expect(trialStatus(trialing({ status: "active" }), "en-US")).toBeNull();
  });
});

describe("a trial about to end", () => {
  it("is a trialing subscription Stripe flagged", () => {
    const flagged = trialing({ id: "sub_f", trialWillEnd: true });
    const ended = trialing({ id: "sub_a", status: "active", trialWillEnd: true });
    expect(endingTrials(overview(14, [], [trialing(), flagged, ended])).map((s) => s.id)).toEqual(["sub_f"]);
  });
  it("asks for a card to keep the modules, or says which payment method is charged", () => {
    const sub = trialing({ trialWillEnd: true });
    expect(trialEndingMessage(sub, catalog, false, "en-US")).toBe("Your trial ends on Dec 15, 2026. Add a card to keep Lead Generation.");
    const two = trialing({
      trialWillEnd: true,
      items: [
        ...sub.items,
        { module: "EmailAutomation", interval: "month", quantity: 1, priceId: "price_ea", unitAmount: 4900, currency: "usd", paidThrough: null, endsAt: null },
      ],
    });
    expect(trialEndingMessage(two, catalog, false, "en-US")).toBe(
      "Your trial ends on Dec 15, 2026. Add a card to keep Lead Generation and Email Automation.",
    );
    expect(trialEndingMessage(sub, catalog, true, "en-US")).toBe(
      "Your trial ends on Dec 15, 2026. Lead Generation is then charged to your default payment method.",
    );
  });
});
