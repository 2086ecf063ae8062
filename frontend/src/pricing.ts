// Pure pricing arithmetic of the pricing page (unit-tested).

import type { BillingInterval, PaidModule, Service } from "./api/billing";

export function priceOf(service: Service, interval: BillingInterval) {
  return service.prices.find((p) => p.interval === interval);
}

/** What a year costs on monthly billing minus the yearly price; null without both prices. */
export function yearlySaving(service: Service): { amount: number; fraction: number } | null {
  const monthly = priceOf(service, "month");
  const yearly = priceOf(service, "year");
  if (!monthly || !yearly || monthly.currency !== yearly.currency) return null;
  const twelve = monthly.unitAmount * 12;
  if (twelve <= 0 || yearly.unitAmount >= twelve) return null;
  return { amount: twelve - yearly.unitAmount, fraction: (twelve - yearly.unitAmount) / twelve };
}

/** The selection's total per interval, in minor units (all catalog prices share one currency). */
export function selectionTotal(
  services: Service[],
  selected: ReadonlySet<string>,
  interval: BillingInterval,
): { amount: number; currency: string } {
  let amount = 0;
  let currency = "usd";
  for (const service of services) {
    if (!selected.has(service.id)) continue;
    const price = priceOf(service, interval);
    if (price) {
      amount += price.unitAmount;
      currency = price.currency;
    }
  }
  return { amount, currency };
}

/** Modules that can be bought: paid, with a price for the interval, not already unlocked. */
export function purchasable(service: Service, interval: BillingInterval): boolean {
  return !service.free && service.unlocked !== true && priceOf(service, interval) !== undefined;
}

export function isPaidModule(id: string): id is PaidModule {
  return id !== "BasicCRM";
}
