import type { PaymentMethod, Service, SubscriptionOverview } from "../../api/billing";
import { useApp } from "../../context";
import { useRedirect } from "../../hooks";
import { endingTrials, trialEndingMessage } from "../../trial";
import { ErrorMessage } from "../Status";

/**
 * Stripe announced (`customer.subscription.trial_will_end`) that a trial ends within 3 days: say
 * when and what is kept, with "Add a card" (the billing portal) when no default payment method
 * would be charged. A status, not an alert: nothing has gone wrong yet.
 */
export function TrialEnding({
  overview,
  catalog,
  methods,
  canManage,
}: {
  overview: SubscriptionOverview;
  catalog: Service[];
  /** null while the payment methods load. */
  methods: PaymentMethod[] | null;
  canManage: boolean;
}) {
  const { api } = useApp();
  const { busy, error, go: open } = useRedirect(() => api.portal(`${window.location.origin}/billing`));
  const ending = endingTrials(overview);
  if (ending.length === 0) return null;
  const hasDefault = methods?.some((pm) => pm.isDefault) ?? false;
  return (
    <div className="card banner" role="status" data-testid="trial-ending">
      {ending.map((sub) => (
        <p key={sub.id} data-subscription={sub.id}>
          {trialEndingMessage(sub, catalog, hasDefault)}
        </p>
      ))}
      {!hasDefault &&
        (canManage ? (
          <button type="button" className="primary" onClick={open} disabled={busy} aria-busy={busy}>
            {busy ? "Opening…" : "Add a card"}
          </button>
        ) : (
          <p className="note">Ask an Owner or Admin of your organization to add a card.</p>
        ))}
      {error && <ErrorMessage error={error} />}
    </div>
  );
}
