import { useEffect, useMemo, useRef, useState } from "react";
import type { BillingInterval, PaidModule, PlanChange, Service } from "../api/billing";
import { canManageBilling } from "../auth";
import { AddToPlan } from "../components/billing/AddToPlan";
import { CheckoutOffer } from "../components/billing/CheckoutOffer";
import { ErrorMessage, Loading } from "../components/Status";
import { useApp } from "../context";
import { formatMoney, formatPercent } from "../format";
import { useLoad } from "../hooks";
import { formatAmount, hasPlan, moduleNames } from "../plan";
import { isPaidModule, priceOf, purchasable, selectionTotal, yearlySaving } from "../pricing";
import { onLinkClick, useLocation } from "../router";
import { moduleOffersTrial, trialBadge } from "../trial";

/** After "Add to your plan" succeeded: what was added and charged, and where to go next. */
function Added({ change, catalog }: { change: PlanChange; catalog: Service[] }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => ref.current?.focus(), [change]);
  const unlocked = new Set(change.subscription.entitlements.filter((e) => e.unlocked).map((e) => e.module));
  return (
    <div className="card added" role="status" tabIndex={-1} ref={ref} data-testid="plan-added">
      <h2>Added to your plan</h2>
      <p>
        {moduleNames(change.added, catalog)} {change.added.length > 1 ? "are" : "is"} now part of your plan.{" "}
        {change.amountCharged > 0 ? `${formatAmount(change.amountCharged, change.currency)} was charged today.` : "Nothing was charged today."}
      </p>
      <ul className="unlocked-list" aria-label="Added modules">
        {change.added.map((id) => (
          <li key={id} data-module={id}>
            {moduleNames([id], catalog)}{" "}
            {unlocked.has(id) ? <span className="badge ok">Unlocked</span> : <span className="badge">Unlocking shortly</span>}
          </li>
        ))}
      </ul>
      <p>
        <a href="/" onClick={onLinkClick}>
          Go to your modules
        </a>{" "}
        ·{" "}
        <a href="/billing" onClick={onLinkClick}>
          Billing settings
        </a>
        {change.hostedInvoiceUrl && (
          <>
            {" "}
            ·{" "}
            <a href={change.hostedInvoiceUrl} target="_blank" rel="noreferrer">
              View the invoice
            </a>
          </>
        )}
      </p>
    </div>
  );
}

function bestYearlySaving(services: Service[]): number | null {
  const fractions = services.map(yearlySaving).filter((s) => s !== null).map((s) => s.fraction);
  return fractions.length ? Math.max(...fractions) : null;
}

export function PricingPage() {
  const { api, session } = useApp();
  const location = useLocation();
  const [services, reload] = useLoad(() => api.services(), [api]);
  const manager = canManageBilling(session);
  // Which plans the org pays for decides between "Add to your plan" and Checkout.
  const [plans, reloadPlans] = useLoad(() => (manager ? api.subscription() : Promise.resolve(null)), [api, manager]);
  const [added, setAdded] = useState<PlanChange | null>(null);
  // Checkout answered 409 plan_exists for these intervals: the overview was behind.
  const [knownPlans, setKnownPlans] = useState<ReadonlySet<BillingInterval>>(new Set());
  const [interval, setInterval] = useState<BillingInterval>("month");
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const preselect = location.searchParams.get("module");
  const canceled = location.searchParams.get("canceled") === "1";

  useEffect(() => {
    if (services.state === "ready" && preselect) {
      const service = services.data.find((s) => s.id === preselect);
      if (service && purchasable(service, interval)) setSelected(new Set([preselect]));
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [services.state, preselect]);

  const catalog = services.state === "ready" ? services.data : [];
  const toBuy = useMemo(
    () => catalog.filter((s) => selected.has(s.id) && purchasable(s, interval)).map((s) => s.id).filter(isPaidModule) as PaidModule[],
    [catalog, selected, interval],
  );
  const total = selectionTotal(catalog, new Set(toBuy), interval);
  const saving = bestYearlySaving(catalog);
  const overview = plans.state === "ready" ? plans.data : null;
  const onPlan = hasPlan(overview, interval) || knownPlans.has(interval);
  const otherInterval: BillingInterval = interval === "year" ? "month" : "year";
  const onOtherPlan = hasPlan(overview, otherInterval) || knownPlans.has(otherInterval);
  const onAdded = (change: PlanChange) => {
    setAdded(change);
    setSelected(new Set());
    reload();
    reloadPlans();
  };

  const toggle = (id: string) =>
    setSelected((current) => {
      const next = new Set(current);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  return (
    <section aria-labelledby="pricing-title">
      <h1 id="pricing-title">Plans and pricing</h1>
      {canceled && (
        <p className="note" role="status">
          Checkout was canceled; nothing was charged.
        </p>
      )}
      {added && <Added change={added} catalog={catalog} />}
      <fieldset className="interval">
        <legend>Billing period</legend>
        <label>
          <input type="radio" name="interval" value="month" checked={interval === "month"} onChange={() => setInterval("month")} />
          Monthly
        </label>
        <label>
          <input type="radio" name="interval" value="year" checked={interval === "year"} onChange={() => setInterval("year")} />
          Yearly{saving !== null && <span className="badge ok">save up to {formatPercent(saving)}</span>}
        </label>
      </fieldset>
      {services.state === "loading" && <Loading what="plans" />}
      {services.state === "error" && <ErrorMessage error={services.error} retry={reload} />}
      {services.state === "ready" && (
        <>
          <ul className="grid plans" aria-label="Modules">
            {catalog.map((service) => {
              const price = priceOf(service, interval);
              const yearly = yearlySaving(service);
              const owned = service.unlocked === true;
              const inputId = `select-${service.id}`;
              return (
                <li key={service.id} className={`card plan ${owned ? "owned" : ""}`} data-module={service.id}>
                  <h2>{service.name}</h2>
                  <p>{service.description}</p>
                  {service.free ? (
                    <p className="price">Included free</p>
                  ) : price ? (
                    <p className="price">
                      {formatMoney(price.unitAmount, price.currency)}
                      <span> / {interval === "year" ? "year" : "month"}</span>
                    </p>
                  ) : null}
                  {interval === "year" && yearly && (
                    <p className="saving">
                      Save {formatMoney(yearly.amount, priceOf(service, "year")?.currency ?? "usd")} a year ({formatPercent(yearly.fraction)})
                    </p>
                  )}
                  {!service.free && !owned && price && moduleOffersTrial(overview, service.id, onPlan) && (
                    <p className="trial-offer" data-testid={`trial-${service.id}`}>
                      {trialBadge(overview?.trialDays ?? 0)}
                    </p>
                  )}
                  {service.free ? (
                    <p className="badge ok">Always on</p>
                  ) : owned ? (
                    <p className="badge ok" data-testid={`owned-${service.id}`}>
                      Your organization has this
                    </p>
                  ) : (
                    manager && (
                      <label htmlFor={inputId} className="select">
                        <input id={inputId} type="checkbox" checked={selected.has(service.id)} onChange={() => toggle(service.id)} />
                        Add {service.name}
                      </label>
                    )
                  )}
                </li>
              );
            })}
          </ul>
          <div className="summary card">
            {!session ? (
              <p>
                <a href="/sign-in" onClick={onLinkClick}>
                  Sign in
                </a>{" "}
                to subscribe.
              </p>
            ) : manager ? (
              <>
                <p aria-live="polite">
                  {toBuy.length === 0
                    ? "Select one or more modules."
                    : `${toBuy.length} module${toBuy.length > 1 ? "s" : ""}: ${formatMoney(total.amount, total.currency)} per ${interval === "year" ? "year" : "month"}`}
                </p>
                {plans.state === "loading" ? (
                  <Loading what="your plan" />
                ) : onPlan ? (
                  <AddToPlan
                    key={`${interval}:${toBuy.join(",")}`}
                    services={toBuy}
                    interval={interval}
                    catalog={catalog}
                    onAdded={onAdded}
                    onRecheck={() => {
                      reload();
                      reloadPlans();
                    }}
                  />
                ) : (
                  <CheckoutOffer
                    key={`${interval}:${toBuy.join(",")}`}
                    services={toBuy}
                    interval={interval}
                    overview={overview}
                    catalog={catalog}
                    onPlanExists={() => {
                      setKnownPlans((known) => new Set([...known, interval]));
                      reloadPlans();
                    }}
                  />
                )}
                {!onPlan && onOtherPlan && (
                  <p className="note full" data-testid="separate-plan-note">
                    Your organization pays {otherInterval === "year" ? "yearly" : "monthly"}. {interval === "year" ? "Yearly" : "Monthly"}{" "}
                    modules are billed on a separate {interval === "year" ? "yearly" : "monthly"} subscription, started through Checkout.
                  </p>
                )}
                {onPlan && toBuy.length > 0 && (
                  <p className="note full">
                    These modules join the {interval === "year" ? "yearly" : "monthly"} plan your organization already pays for: you see the
                    price for the rest of this period before anything is charged.
                  </p>
                )}
              </>
            ) : (
              <p className="note" data-testid="member-note">
                Only an Owner or Admin of your organization can subscribe. You are signed in as a {session.role}; ask an Owner
                or Admin to upgrade.
              </p>
            )}
          </div>
        </>
      )}
    </section>
  );
}
