import { useEffect, useRef, useState } from "react";
import type { SubscriptionOverview } from "../api/billing";
import { canManageBilling } from "../auth";
import { InvoiceList } from "../components/billing/InvoiceList";
import { ManageError } from "../components/billing/ManageError";
import { PaymentMethods } from "../components/billing/PaymentMethods";
import { SubscriptionStatus } from "../components/billing/SubscriptionStatus";
import { TrialEnding } from "../components/billing/TrialEnding";
import { ErrorMessage, Loading } from "../components/Status";
import { useApp } from "../context";
import { useLoad, useRedirect } from "../hooks";
import { portalErrorMessage } from "../manage";

function ManageBilling() {
  const { api } = useApp();
  const { busy, error, go: open } = useRedirect(() => api.portal(`${window.location.origin}/billing`));
  return (
    <div>
      <button type="button" className="primary" onClick={open} disabled={busy} aria-busy={busy}>
        {busy ? "Opening…" : "Manage billing"}
      </button>
      <p className="note" data-testid="portal-note">
        Stripe's billing portal shows your invoice history and lets you update your card, billing address and tax ID, or cancel
        your plan at the end of the billing period. Remove modules and switch between monthly and yearly billing on this page.
      </p>
      {error && <ManageError error={error} message={portalErrorMessage(error)} />}
    </div>
  );
}

export function BillingSettingsPage() {
  const { api, session } = useApp();
  const [overview, reloadOverview] = useLoad(() => api.subscription(), [api]);
  const [methods, reloadMethods] = useLoad(() => api.paymentMethods(), [api]);
  // Only for the modules' names; the items show their ids until (or unless) it loads.
  const [catalog] = useLoad(() => api.services(), [api]);
  // The overview a change answered with (newer than the one loaded), and what the change did.
  const [changed, setChanged] = useState<{ overview: SubscriptionOverview; notice: string; round: number } | null>(null);
  const noticeRef = useRef<HTMLParagraphElement>(null);
  useEffect(() => {
    if (changed) noticeRef.current?.focus();
  }, [changed]);
  if (!session) return <p>Sign in to see your organization's billing.</p>;
  const canManage = canManageBilling(session);
  const shown = changed?.overview ?? (overview.state === "ready" ? overview.data : null);
  const names = catalog.state === "ready" ? catalog.data : [];
  const recheck = () => {
    setChanged(null);
    reloadOverview();
  };
  return (
    <section aria-labelledby="billing-title" className="stack">
      <h1 id="billing-title">Billing settings</h1>
      {shown && <TrialEnding overview={shown} catalog={names} methods={methods.state === "ready" ? methods.data : null} canManage={canManage} />}
      {canManage ? <ManageBilling /> : <p className="note">Only an Owner or Admin can change billing.</p>}
      {changed && (
        <p className="card added" role="status" tabIndex={-1} ref={noticeRef} data-testid="plan-changed">
          {changed.notice}
        </p>
      )}
      {!shown && overview.state === "loading" && <Loading what="subscription" />}
      {!shown && overview.state === "error" && <ErrorMessage error={overview.error} retry={reloadOverview} />}
      {shown && (
        <SubscriptionStatus
          overview={shown}
          catalog={names}
          canManage={canManage}
          onChanged={(next, notice) => setChanged((prev) => ({ overview: next, notice, round: (prev?.round ?? 0) + 1 }))}
          onRecheck={recheck}
        />
      )}
      {methods.state === "loading" && <Loading what="payment methods" />}
      {methods.state === "error" && <ErrorMessage error={methods.error} retry={reloadMethods} />}
      {methods.state === "ready" && <PaymentMethods methods={methods.data} />}
      <InvoiceList key={changed?.round ?? 0} api={api} />
    </section>
  );
}
