// Words and figures for adding modules to a plan (issue 19): the preview's sentence, the confirm
// button, each API error as a sentence, the billing page's item lines. Pure, unit-tested.

import type {
  BillingApiError,
  BillingInterval,
  PlanPreview,
  Service,
  SubscriptionItem,
  SubscriptionOverview,
} from "./api/billing";
import { formatDate } from "./format";

const ZERO_DECIMAL = new Set(["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]);

/** A charge to the cent, always with its decimals ("$148.00", "-$5.25"): what a card is charged. */
export function formatAmount(minorUnits: number, currency: string, locale?: string): string {
  const code = currency.toLowerCase();
  const digits = ZERO_DECIMAL.has(code) ? 0 : 2;
  return new Intl.NumberFormat(locale, {
    style: "currency",
    currency: code.toUpperCase(),
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(minorUnits / 10 ** digits);
}

export function intervalWord(interval: BillingInterval): "month" | "year" {
  return interval === "year" ? "year" : "month";
}

/** "$32.67 today, then $148.00 per month from Jan 1, 2027". */
export function previewSummary(preview: PlanPreview, locale?: string): string {
  const today = formatAmount(preview.amountDueToday, preview.currency, locale);
  const next = formatAmount(preview.nextInvoice.amount, preview.currency, locale);
  const from = preview.nextInvoice.date !== null ? ` from ${formatDate(preview.nextInvoice.date, locale)}` : "";
  return `${today} today, then ${next} per ${intervalWord(preview.interval)}${from}`;
}

export function confirmLabel(preview: PlanPreview, locale?: string): string {
  return preview.amountDueToday > 0
    ? `Confirm and pay ${formatAmount(preview.amountDueToday, preview.currency, locale)}`
    : "Confirm";
}

/** The catalog's names for module ids, in a sentence: "Email Automation and Social Inbox". */
export function moduleNames(ids: readonly string[], catalog: readonly Pick<Service, "id" | "name">[], locale?: string): string {
  const names = ids.map((id) => catalog.find((s) => s.id === id)?.name ?? id);
  return new Intl.ListFormat(locale ?? "en", { style: "long", type: "conjunction" }).format(names);
}

/** Statuses in which a subscription is the org's plan: new modules of its interval join it. */
const LIVE = new Set(["active", "trialing", "past_due"]);

/** Whether the org pays for a subscription of `interval` (then modules are added to it). */
export function hasPlan(overview: SubscriptionOverview | null, interval: BillingInterval): boolean {
  return (
    overview?.subscriptions.some((sub) => LIVE.has(sub.status) && sub.items.some((item) => item.interval === interval)) ??
    false
  );
}

/** Answers after which the figures shown are no longer the ones the API would charge. */
export function needsNewPreview(error: BillingApiError): boolean {
  return ["preview_expired", "invalid_proration_date", "no_subscription"].includes(error.code);
}

/** An error of the preview or the add call, as a sentence a buyer can act on. */
export function planErrorMessage(error: BillingApiError, interval: BillingInterval): string {
  const period = interval === "year" ? "yearly" : "monthly";
  switch (error.code) {
    case "payment_incomplete":
      return "The payment did not go through (the card was declined or needs you to confirm it), so nothing was added to your plan yet. Pay or confirm it on the invoice: the modules are added once it is paid.";
    case "payment_pending":
      return "An earlier addition to your plan is still waiting for payment. Finish paying that invoice before adding more.";
    case "payment_past_due":
      return `Your ${period} plan has a payment past due. Pay it first (Pay now, at the top of the page) before adding modules.`;
    case "change_scheduled":
      return `A module of your ${period} plan is set to end at the end of the period. Keep it under Billing first, or add modules after that date.`;
    case "already_subscribed":
      return "Your organization already has one of these modules. Reload the page to see what you have.";
    case "no_subscription":
      return `Your organization no longer has a ${period} plan to add to, so these modules need a new subscription through Checkout.`;
    case "plan_exists":
      return `Your organization already has a ${period} plan: add the modules to it instead of subscribing again.`;
    case "preview_expired":
    case "invalid_proration_date":
      return "The price changed since it was shown (the quote expired or a new period began). Here are the new figures: confirm again to pay them.";
    case "invalid_services":
      return "One of the chosen modules cannot be bought. Reload the page and choose again.";
    case "invalid_interval":
      return "That billing period is not offered. Choose monthly or yearly.";
  }
  switch (error.status) {
    case 0:
      return "The billing service could not be reached. Check your connection, then your plan, and try again.";
    case 401:
      return "Your session has expired. Sign in again.";
    case 403:
      return "Only an Owner or Admin of your organization can change its plan.";
    case 502:
    case 503:
      return "Billing or Stripe is unavailable for a moment. Try again shortly.";
  }
  return error.message;
}

/** "Email Automation — $49.00 / month", from a subscription item and the catalog's names. */
export function itemLine(item: SubscriptionItem, catalog: readonly Pick<Service, "id" | "name">[], locale?: string): string {
  const name = item.module ? (catalog.find((s) => s.id === item.module)?.name ?? item.module) : "Unknown price";
  const count = item.quantity > 1 ? ` × ${item.quantity}` : "";
  if (item.unitAmount === null || item.unitAmount === undefined || !item.currency || !item.interval) {
    const period = item.interval ? ` (${item.interval === "year" ? "yearly" : "monthly"})` : "";
    return `${name}${count}${period}`;
  }
  return `${name}${count} — ${formatAmount(item.unitAmount * Math.max(item.quantity, 1), item.currency, locale)} / ${intervalWord(item.interval)}`;
}

/** The plan's total per period, when every item has a known price in one currency and interval. */
export function planTotal(items: readonly SubscriptionItem[]): { amount: number; currency: string; interval: BillingInterval } | null {
  const first = items[0];
  if (!first?.currency || !first.interval) return null;
  let amount = 0;
  for (const item of items) {
    if (item.unitAmount === null || item.unitAmount === undefined || item.currency !== first.currency || item.interval !== first.interval) {
      return null;
    }
    amount += item.unitAmount * Math.max(item.quantity, 1);
  }
  return { amount, currency: first.currency, interval: first.interval };
}
