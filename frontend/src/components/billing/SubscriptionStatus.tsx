import type { Service, SubscriptionOverview } from "../../api/billing";
import { formatDate } from "../../format";
import { switchTarget } from "../../manage";
import { formatAmount, intervalWord, planTotal } from "../../plan";
import { trialStatus } from "../../trial";
import { IntervalSwitch } from "./IntervalSwitch";
import { PlanModules } from "./PlanModules";

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

/** The org's subscriptions, each with its modules, their price per period and when each renews or
 * ends. `catalog` names them. With `canManage` (Owner/Admin): remove a module at period end, keep
 * it, switch the plan between monthly and yearly; `onChanged` gets the overview after a change. */
export function SubscriptionStatus({
  overview,
  catalog = [],
  canManage = false,
  onChanged = () => {},
  onRecheck = () => {},
}: {
  overview: SubscriptionOverview;
  catalog?: Service[];
  canManage?: boolean;
  onChanged?: (overview: SubscriptionOverview, notice: string) => void;
  onRecheck?: () => void;
}) {
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
            const target = switchTarget(sub);
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
                <PlanModules sub={sub} catalog={catalog} canManage={canManage} onChanged={onChanged} />
                <dl>
                  {sub.cancelAtPeriodEnd ? (
                    <>
                      <dt>Plan ends on</dt>
                      <dd data-testid="cancels-on">{formatDate(sub.cancelAt ?? sub.currentPeriodEnd)} (canceled at period end)</dd>
                    </>
                  ) : (
                    sub.status !== "canceled" &&
                    sub.status !== "trialing" && (
                      <>
                        <dt>Plan renews on</dt>
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
                {canManage && target && (
                  <IntervalSwitch key={`${sub.id}-${target}`} sub={sub} target={target} catalog={catalog} onChanged={onChanged} onRecheck={onRecheck} />
                )}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
