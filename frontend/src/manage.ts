// Managing a plan (issue 20): each module's row ("Renews on" / "Ends on"), removing a module at
// period end and keeping it after all, switching the plan between monthly and yearly, and the
// past-due banner. Words and figures only; pure, unit-tested.

import type {
  BillingApiError,
  BillingInterval,
  OpenInvoice,
  PaidModule,
  PlanPreview,
  PlanPreviewLine,
  Service,
  Subscription,
  SubscriptionItem,
  SubscriptionOverview,
} from "./api/billing";
import { formatDate } from "./format";
import { formatAmount, intervalWord, itemLine } from "./plan";

type Catalog = readonly Pick<Service, "id" | "name">[];

/** The catalog's name of a module ("Email Automation"), its id when the catalog lacks it. */
export function moduleName(id: string, catalog: Catalog): string {
  return catalog.find((s) => s.id === id)?.name ?? id;
}

/** Statuses in which a plan's modules can be removed, kept, or the plan switched. */
const MANAGEABLE = new Set(["active", "trialing"]);

/** One module of a plan as the billing page shows it. */
export interface ModuleRow {
  /** The module id (null: a price that is not one of the catalog's). */
  module: PaidModule | null;
  name: string;
  /** "Email Automation — $49.00 / month". */
  line: string;
  /** Set to stop (removed at period end, or the plan cancels then). */
  ending: boolean;
  /** Unix seconds: when it ends, or when it renews (the end of the period paid for). */
  date: number | null;
  /** "Ends on Jan 1, 2027", "Renews on Jan 1, 2027", or null when neither is known. */
  dateText: string | null;
  /** Owner/Admin may remove it at period end (a renewing paid module of a live plan). */
  canRemove: boolean;
  /** Owner/Admin may keep it: it ends at period end (removed alone, or with the whole plan). */
  canKeep: boolean;
}

/** When an item stops: its own `endsAt`, else the plan's scheduled cancellation. */
export function itemEndsAt(item: SubscriptionItem, sub: Pick<Subscription, "cancelAtPeriodEnd" | "cancelAt" | "currentPeriodEnd">): number | null {
  if (item.endsAt !== null && item.endsAt !== undefined) return item.endsAt;
  if (sub.cancelAtPeriodEnd) return sub.cancelAt ?? sub.currentPeriodEnd ?? null;
  return null;
}

/** The rows of a subscription's modules, in the order Stripe lists its items. */
export function moduleRows(sub: Subscription, catalog: Catalog, locale?: string): ModuleRow[] {
  const live = MANAGEABLE.has(sub.status);
  return sub.items.map((item) => {
    const endsAt = itemEndsAt(item, sub);
    const ending = endsAt !== null;
    const renews = item.paidThrough ?? sub.currentPeriodEnd ?? null;
    const date = ending ? endsAt : sub.status === "canceled" ? null : renews;
    const dateText = date === null ? null : `${ending ? "Ends on" : "Renews on"} ${formatDate(date, locale)}`;
    const paid = item.module !== null && item.module !== "BasicCRM";
    // Any module set to end can be kept before the date: on its own, or the one the org keeps of
    // a plan set to cancel (the API clears the cancellation and still ends the others).
    return {
      module: paid ? (item.module as PaidModule) : null,
      name: item.module ? moduleName(item.module, catalog) : "Unknown price",
      line: itemLine(item, catalog, locale),
      ending,
      date,
      dateText,
      canRemove: live && paid && !ending,
      canKeep: live && paid && ending,
    };
  });
}

/** The confirm step's promise: "You keep Email Automation until Jan 1, 2027 and are not charged for it again." */
export function removeConfirmText(name: string, until: number | null, locale?: string): string {
  const when = until !== null ? ` until ${formatDate(until, locale)}` : " until the end of the period you paid for";
  return `You keep ${name}${when} and are not charged for it again.`;
}

/** After the removal: "Email Automation ends on Jan 1, 2027. Until then you keep using it." */
export function removedText(name: string, endsAt: number | null, locale?: string): string {
  return endsAt !== null
    ? `${name} ends on ${formatDate(endsAt, locale)}. Until then you keep using it.`
    : `${name} ends at the end of the period you paid for.`;
}

/** After the undo: "Email Automation stays on your plan and renews on Jan 1, 2027." */
export function keptText(name: string, renewsOn: number | null, locale?: string): string {
  return renewsOn !== null
    ? `${name} stays on your plan and renews on ${formatDate(renewsOn, locale)}. Nothing was charged.`
    : `${name} stays on your plan. Nothing was charged.`;
}

/** A removal's or undo's error, as a sentence a person can act on. */
export function moduleErrorMessage(error: BillingApiError, name: string): string {
  switch (error.code) {
    case "not_subscribed":
      return `${name} is no longer on your plan. Reload the page to see what you have.`;
    case "payment_past_due":
      return `Your plan has a payment past due. Pay the open invoice first, then change ${name}.`;
    case "change_scheduled":
      return `A change to your plan is already scheduled. Reload the page to see it before changing ${name}.`;
  }
  return commonErrorMessage(error) ?? error.message;
}

/** Errors every managing call shares, by HTTP status; null when the code needs its own words. */
function commonErrorMessage(error: BillingApiError): string | null {
  switch (error.status) {
    case 0:
      return "The billing service could not be reached. Check your connection and try again.";
    case 401:
      return "Your session has expired. Sign in again.";
    case 403:
      return "Only an Owner or Admin of your organization can change its plan.";
    case 502:
    case 503:
      return "Billing or Stripe is unavailable for a moment. Try again shortly.";
  }
  return null;
}

/** The plan's interval: the subscription's, or its items' when an older API leaves it out. */
export function planInterval(sub: Pick<Subscription, "interval" | "items">): BillingInterval | null {
  if (sub.interval) return sub.interval;
  return sub.items.find((item) => item.interval)?.interval ?? null;
}

/** The interval a plan can switch to (the other one), or null when it cannot switch now: not
 * while it cancels or a module of it is set to end (the API refuses: `plan_canceling`,
 * `change_scheduled`; the module's row offers "Keep" first). */
export function switchTarget(sub: Subscription): BillingInterval | null {
  if (!MANAGEABLE.has(sub.status) || sub.items.length === 0) return null;
  if (sub.cancelAtPeriodEnd || sub.items.some((item) => item.endsAt !== null && item.endsAt !== undefined)) return null;
  const current = planInterval(sub);
  if (!current) return null;
  return current === "month" ? "year" : "month";
}

/** "Switch to yearly" / "Switch to monthly". */
export function switchLabel(target: BillingInterval): string {
  return `Switch to ${target === "year" ? "yearly" : "monthly"}`;
}

/** "$420.00 today (credit for unused time included), then $499.00 per year from Jan 1, 2028". */
export function switchSummary(preview: PlanPreview, locale?: string): string {
  const today = formatAmount(preview.amountDueToday, preview.currency, locale);
  const next = formatAmount(preview.nextInvoice.amount, preview.currency, locale);
  const from = preview.nextInvoice.date !== null ? ` from ${formatDate(preview.nextInvoice.date, locale)}` : "";
  return `${today} today (credit for unused time included), then ${next} per ${intervalWord(preview.interval)}${from}`;
}

/** The confirm button of a switch: "Switch and pay $420.00", or "Switch to yearly" when nothing is due. */
export function switchConfirmLabel(preview: PlanPreview, locale?: string): string {
  return preview.amountDueToday > 0
    ? `Switch and pay ${formatAmount(preview.amountDueToday, preview.currency, locale)}`
    : switchLabel(preview.interval);
}

/** A preview line in words, with the module's name: "Email Automation: credit for unused time". */
export function switchLineLabel(line: PlanPreviewLine, catalog: Catalog): string {
  const name = line.service ? moduleName(line.service, catalog) : null;
  const what = line.proration
    ? line.amount < 0
      ? "credit for unused time"
      : "remaining time"
    : line.periodStart !== null && line.periodEnd !== null
      ? `${formatDate(line.periodStart)} – ${formatDate(line.periodEnd)}`
      : line.description;
  return name ? `${name}: ${what}` : line.description;
}

/** After the switch: "Your plan is now billed yearly. $420.00 was charged today." */
export function switchedText(interval: BillingInterval, amountCharged: number, currency: string, locale?: string): string {
  const period = interval === "year" ? "yearly" : "monthly";
  const charged =
    amountCharged > 0
      ? ` ${formatAmount(amountCharged, currency, locale)} was charged today.`
      : amountCharged < 0
        ? ` ${formatAmount(-amountCharged, currency, locale)} was credited to your account.`
        : " Nothing was charged today.";
  return `Your plan is now billed ${period}.${charged}`;
}

/** Answers after which a switch's figures are stale: show a fresh preview to confirm. */
export function switchNeedsNewPreview(error: BillingApiError): boolean {
  return ["preview_expired", "invalid_proration_date"].includes(error.code);
}

/** The modules of a plan set to end, with their dates, in words: "Email Automation (ends Jan 1, 2027)". */
function endingModules(sub: Subscription | null, catalog: Catalog, locale?: string): string | null {
  if (!sub) return null;
  const ending = sub.items.filter((item) => item.module && item.endsAt !== null && item.endsAt !== undefined);
  if (ending.length === 0) return null;
  const names = ending.map((item) => `${moduleName(item.module ?? "", catalog)} (ends ${formatDate(item.endsAt, locale)})`);
  return new Intl.ListFormat(locale ?? "en", { style: "long", type: "conjunction" }).format(names);
}

/** A switch's error (preview or confirm) in words. `target`: the interval asked for. */
export function switchErrorMessage(
  error: BillingApiError,
  target: BillingInterval,
  sub: Subscription | null = null,
  catalog: Catalog = [],
  locale?: string,
): string {
  const period = target === "year" ? "yearly" : "monthly";
  switch (error.code) {
    case "payment_incomplete":
      return `The payment did not go through (the card was declined or needs you to confirm it), so your plan is not billed ${period} yet. Pay on the invoice page: the switch is made once it is paid.`;
    case "preview_expired":
    case "invalid_proration_date":
      return "The price changed since it was shown (the quote expired or a new period began), so nothing was charged. Here are the new figures: confirm again to switch.";
    case "change_scheduled": {
      const ending = endingModules(sub, catalog, locale);
      return `${ending ? `A module of your plan is set to end: ${ending}.` : "A module of your plan is set to end."} Keep it first, or switch to ${period} after that date.`;
    }
    case "plan_exists":
      return `Your organization already has a ${period} plan, so this one cannot become ${period} too. Remove its modules at period end and add them to the ${period} plan instead.`;
    case "plan_canceling":
      return "Your plan is set to cancel at the end of the period. Undo the cancellation in Manage billing before switching.";
    case "payment_past_due":
      return `A payment of your plan is past due. Pay it first, then switch to ${period}.`;
    case "already_on_interval":
      return `Your plan is already billed ${period}. Reload the page to see it.`;
    case "invalid_interval":
      return "That billing period is not offered. Choose monthly or yearly.";
    case "no_subscription":
    case "not_subscribed":
      return "Your organization has no plan to switch. Reload the page to see what you have.";
  }
  return commonErrorMessage(error) ?? error.message;
}

/** The portal's error in words (it may be switched off: 503 `portal_unavailable`). */
export function portalErrorMessage(error: BillingApiError): string {
  if (error.code === "portal_unavailable") {
    return "The billing portal is not available right now. Try again shortly; modules and the billing period can still be changed on this page.";
  }
  if (error.code === "no_billing_account") return "Your organization has no billing account yet: subscribe to a module first.";
  return commonErrorMessage(error) ?? error.message;
}

/** Statuses in which a subscription waits for a payment. */
const UNPAID = new Set(["past_due", "unpaid", "incomplete"]);

/** A failed payment the banner asks to pay. */
export interface PastDueNotice {
  subscriptionId: string;
  invoice: OpenInvoice;
  /** Unix seconds when access ends (past_due's grace period); null when unknown or unpaid. */
  accessEnds: number | null;
  message: string;
}

/** "Your payment of $148.00 failed. Pay now to keep your modules; access ends on Jan 8, 2027." */
export function pastDueMessage(
  sub: Pick<Subscription, "status" | "gracePeriodEnd">,
  invoice: Pick<OpenInvoice, "amountDue" | "currency">,
  locale?: string,
): string {
  const amount = formatAmount(invoice.amountDue, invoice.currency, locale);
  const ends = sub.status === "unpaid" ? null : sub.gracePeriodEnd;
  return ends !== null && ends !== undefined
    ? `Your payment of ${amount} failed. Pay now to keep your modules; access ends on ${formatDate(ends, locale)}.`
    : `Your payment of ${amount} failed. Pay now to keep your modules.`;
}

/** Every subscription waiting for a payment with an open invoice, newest first (as listed). */
export function pastDueNotices(overview: SubscriptionOverview | null, locale?: string): PastDueNotice[] {
  if (!overview) return [];
  return overview.subscriptions.flatMap((sub) => {
    const invoice = sub.openInvoice;
    if (!UNPAID.has(sub.status) || !invoice) return [];
    const accessEnds = sub.status === "unpaid" ? null : (sub.gracePeriodEnd ?? null);
    const url = invoice.hostedInvoiceUrl && /^https?:\/\//.test(invoice.hostedInvoiceUrl) ? invoice.hostedInvoiceUrl : null;
    return [
      { subscriptionId: sub.id, invoice: { ...invoice, hostedInvoiceUrl: url }, accessEnds, message: pastDueMessage(sub, invoice, locale) },
    ];
  });
}
