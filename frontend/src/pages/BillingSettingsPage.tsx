import type { SubscriptionOverview } from "../api/billing";
import { canManageBilling } from "../auth";
import { InvoiceList } from "../components/billing/InvoiceList";
import { PaymentMethods } from "../components/billing/PaymentMethods";
import { SubscriptionStatus } from "../components/billing/SubscriptionStatus";
import { TrialEnding } from "../components/billing/TrialEnding";
import { ErrorMessage, Loading } from "../components/Status";
import { useApp } from "../context";
import { useLoad, useRedirect } from "../hooks";

function ManageBilling({ overview }: { overview: SubscriptionOverview | null }) {
  const { api } = useApp();
  const { busy, error, go: open } = useRedirect(() => api.portal(`${window.location.origin}/billing`));
  return (
    <div>
      <button type="button" className="primary" onClick={open} disabled={busy} aria-busy={busy}>
        {busy ? "Opening…" : "Manage billing"}
      </button>
      <p className="note">
        Cancel or change your card on the billing portal.
        {overview?.subscriptions.some((sub) => sub.status !== "canceled" && sub.items.length > 1) &&
          " The portal cannot switch a plan of several modules between monthly and yearly; add modules from Pricing."}
      </p>
      {error && <ErrorMessage error={error} />}
    </div>
  );
}

export function BillingSettingsPage() {
  const { api, session } = useApp();
  const [overview, reloadOverview] = useLoad(() => api.subscription(), [api]);
  const [methods, reloadMethods] = useLoad(() => api.paymentMethods(), [api]);
  // Only for the modules' names; the items show their ids until (or unless) it loads.
  const [catalog] = useLoad(() => api.services(), [api]);
  if (!session) return <p>Sign in to see your organization's billing.</p>;
  return (
    <section aria-labelledby="billing-title" className="stack">
      <h1 id="billing-title">Billing settings</h1>
      {overview.state === "ready" && (
        <TrialEnding
          overview={overview.data}
          catalog={catalog.state === "ready" ? catalog.data : []}
          methods={methods.state === "ready" ? methods.data : null}
          canManage={canManageBilling(session)}
        />
      )}
      {canManageBilling(session) ? <ManageBilling overview={overview.state === "ready" ? overview.data : null} /> : <p className="note">Only an Owner or Admin can change billing.</p>}
      {overview.state === "loading" && <Loading what="subscription" />}
      {overview.state === "error" && <ErrorMessage error={overview.error} retry={reloadOverview} />}
      {overview.state === "ready" && <SubscriptionStatus overview={overview.data} catalog={catalog.state === "ready" ? catalog.data : []} />}
      {methods.state === "loading" && <Loading what="payment methods" />}
      {methods.state === "error" && <ErrorMessage error={methods.error} retry={reloadMethods} />}
      {methods.state === "ready" && <PaymentMethods methods={methods.data} />}
      <InvoiceList api={api} />
    </section>
  );
}
