import type { Service, SubscriptionOverview } from "../../api/billing";
import { formatDate } from "../../format";
import { formatAmount, intervalWord, itemLine, planTotal } from "../../plan";
import { trialStatus } from "../../trial";

const STATUS_WORDS: Record<SubscriptionOverview["status"], string> = {
  none: "No subscription",
  active: "Active",
  trialing: "In trial",
  past_due: "Payment past due",
  unpaid: "Unpaid",
  paused: "Paused",
  incomplete: "Payment incomplete",
  incomplete_expired: "Payment expired",
  canceled: "Canceled",
};

/** The org's subscriptions, each with its modules and their price per period. `catalog` names them. */
export function SubscriptionStatus({ overview, catalog = [] }: { overview: SubscriptionOverview; catalog?: Service[] }) {
  return (
    <section aria-labelledby="subscription-title" className="card">
      <h2 id="subscription-title">Subscription</h2>
      <p>
        Status: <strong data-testid="overall-status">{STATUS_WORDS[overview.status]}</strong>
      </p>
      {overview.subscriptions.length === 0 ? (
        <p className="empty">Your organization has no paid modules yet.</p>
      ) : (
        <ul className="subscriptions">
          {overview.subscriptions.map((sub) => {
            const total = planTotal(sub.items);
            const trial = trialStatus(sub);
            return (
              <li key={sub.id} data-subscription={sub.id} data-status={sub.status}>
                <p>
                  <strong data-testid="subscription-status">{trial ?? STATUS_WORDS[sub.status]}</strong>
                  {total && (
                    <span data-testid="plan-total">
                      {` · ${formatAmount(total.amount, total.currency)} per ${intervalWord(total.interval)} for ${sub.items.length} module${sub.items.length === 1 ? "" : "s"}`}
                    </span>
                  )}
                </p>
                <ul className="items" aria-label="Modules on this subscription">
                  {sub.items.map((item) => (
                    <li key={item.priceId + (item.module ?? "")} data-item={item.module ?? item.priceId}>
                      {itemLine(item, catalog)}
                    </li>
                  ))}
                </ul>
                <dl>
                  {sub.cancelAtPeriodEnd ? (
                    <>
                      <dt>Ends on</dt>
                      <dd data-testid="cancels-on">{formatDate(sub.cancelAt ?? sub.currentPeriodEnd)} (canceled at period end)</dd>
                    </>
                  ) : (
                    sub.status !== "canceled" &&
                    sub.status !== "trialing" && (
                      <>
                        <dt>Renews on</dt>
                        <dd>{formatDate(sub.currentPeriodEnd)}</dd>
                      </>
                    )
                  )}
                  {sub.trialEnd !== null && sub.status !== "trialing" && (
                    <>
                      <dt>{sub.trialEnd * 1000 <= Date.now() ? "Trial ended" : "Trial ends"}</dt>
                      <dd>{formatDate(sub.trialEnd)}</dd>
                    </>
                  )}
                  {sub.status === "trialing" && !sub.cancelAtPeriodEnd && total && (
                    <>
                      <dt>Then</dt>
                      <dd>
                        {formatAmount(total.amount, total.currency)} per {intervalWord(total.interval)}, charged to your default payment method; without one
                        the subscription ends with the trial
                      </dd>
                    </>
                  )}
                  {sub.gracePeriodEnd !== null && (
                    <>
                      <dt>Access kept until</dt>
                      <dd>{formatDate(sub.gracePeriodEnd)} (update your card before then)</dd>
                    </>
                  )}
                </dl>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
