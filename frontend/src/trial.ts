// Free trials (issue 21): whether a checkout starts one, and the words for it on the pricing and
// billing pages. A module gets one trial per org, on its first purchase through Checkout; adding
// a module to a plan the org already pays for starts none. Pure, unit-tested.

import type { PaidModule, PlanPreview, Service, Subscription, SubscriptionOverview } from "./api/billing";
import { formatDate } from "./format";
import { moduleNames } from "./plan";

const DAY = 86_400;

type Catalog = readonly Pick<Service, "id" | "name">[];

/** What a checkout of the selection starts: a trial ending at `endsAt` (Unix seconds), none, or
 * none because `used` modules had theirs. */
export type TrialOffer =
  | { kind: "none" }
  | { kind: "trial"; days: number; endsAt: number }
  | { kind: "used"; used: PaidModule[] };

function trialedSet(overview: SubscriptionOverview): ReadonlySet<string> {
  return new Set(overview.trialedModules ?? []);
}

/**
 * The trial a checkout of `services` would start, from the overview: one when this deployment
 * offers trials and none of the modules was trialled (one trialled module makes the whole
 * checkout charged today). `now` in Unix seconds.
 */
export function trialOffer(
  overview: SubscriptionOverview | null,
  services: readonly PaidModule[],
  now: number,
): TrialOffer {
  const days = overview?.trialDays ?? 0;
  if (!overview || days <= 0 || services.length === 0) return { kind: "none" };
  const trialed = trialedSet(overview);
  const used = services.filter((id) => trialed.has(id));
  if (used.length > 0) return { kind: "used", used };
  return { kind: "trial", days, endsAt: now + days * DAY };
}

/**
 * The checkout-mode preview has the last word (the API may know better than the overview): its
 * `trialDays` decides, and its next invoice's date is when the trial ends.
 */
export function withPreview(offer: TrialOffer, preview: PlanPreview | null, now: number): TrialOffer {
  if (!preview || preview.mode !== "checkout") return offer;
  const days = preview.trialDays ?? 0;
  if (days > 0) return { kind: "trial", days, endsAt: preview.nextInvoice.date ?? now + days * DAY };
  return offer.kind === "trial" ? { kind: "none" } : offer;
}

/** Whether a module's card offers a trial: trials on, not trialled, and no plan of the interval to join. */
export function moduleOffersTrial(overview: SubscriptionOverview | null, module: string, onPlan: boolean): boolean {
  return !!overview && (overview.trialDays ?? 0) > 0 && !onPlan && !trialedSet(overview).has(module);
}

/** "Start 14-day free trial". */
export function trialCallToAction(days: number): string {
  return `Start ${days}-day free trial`;
}

/** "14-day free trial", on a module's card. */
export function trialBadge(days: number): string {
  return `${days}-day free trial`;
}

/** "No card needed. The trial ends on Dec 15, 2026; add a card before then to keep it." */
export function trialNote(endsAt: number, modules: number, locale?: string): string {
  return `No card needed. The trial ends on ${formatDate(endsAt, locale)}; add a card before then to keep ${modules > 1 ? "them" : "it"}.`;
}

/** "Email Automation's trial was used, so this checkout is charged today." */
export function trialUsedNote(used: readonly string[], catalog: Catalog, locale?: string): string {
  const names = moduleNames(used, catalog, locale);
  return used.length > 1
    ? `The trials of ${names} were used, so this checkout is charged today.`
    : `${names}'s trial was used, so this checkout is charged today.`;
}

/** "Free trial until Dec 15, 2026" for a trialing subscription; null otherwise. */
export function trialStatus(sub: Pick<Subscription, "status" | "trialEnd">, locale?: string): string | null {
  if (sub.status !== "trialing") return null;
  return sub.trialEnd !== null ? `Free trial until ${formatDate(sub.trialEnd, locale)}` : "Free trial";
}

/** The subscriptions whose trial Stripe said ends within 3 days. */
export function endingTrials(overview: SubscriptionOverview): Subscription[] {
  return overview.subscriptions.filter((sub) => sub.status === "trialing" && sub.trialWillEnd === true);
}

/** "Your trial ends on Dec 15, 2026. Add a card to keep Lead Generation." (or, with a default
 * card on file, that it is charged to it). */
export function trialEndingMessage(sub: Subscription, catalog: Catalog, hasDefaultCard: boolean, locale?: string): string {
  const modules = sub.items.map((item) => item.module).filter((m): m is NonNullable<typeof m> => !!m);
  const names = modules.length > 0 ? moduleNames(modules, catalog, locale) : "your modules";
  const when = sub.trialEnd !== null ? ` on ${formatDate(sub.trialEnd, locale)}` : " soon";
  return hasDefaultCard
    ? `Your trial ends${when}. ${names} ${modules.length > 1 ? "are" : "is"} then charged to your default payment method.`
    : `Your trial ends${when}. Add a card to keep ${names}.`;
}
