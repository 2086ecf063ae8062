import { useEffect } from "react";
import { canManageBilling } from "../../auth";
import { useApp } from "../../context";
import { useLoad, useRedirect } from "../../hooks";
import { pastDueNotices, portalErrorMessage } from "../../manage";
import { ManageError } from "./ManageError";

/**
 * On every page while a payment failed (a subscription past_due, unpaid or incomplete with an
 * open invoice): what failed and until when access lasts, "Pay now" (Stripe's invoice page, in
 * a new tab) and "Update card" (the portal, deep-linked to the card). Read again on every page
 * change and when the tab gets the focus back (after paying in the other tab).
 */
export function PastDueBanner({ path }: { path: string }) {
  const { api, session } = useApp();
  const [overview, reload] = useLoad(() => (session ? api.subscription() : Promise.resolve(null)), [api, session, path]);
  const { busy, error, go: updateCard } = useRedirect(() => api.portal(window.location.href, "payment_method_update"));
  useEffect(() => {
    const again = () => {
      if (document.visibilityState === "visible") reload();
    };
    window.addEventListener("focus", again);
    document.addEventListener("visibilitychange", again);
    return () => {
      window.removeEventListener("focus", again);
      document.removeEventListener("visibilitychange", again);
    };
  }, [reload]);
  const notices = pastDueNotices(overview.state === "ready" ? overview.data : null);
  if (!session || notices.length === 0) return null;
  const canManage = canManageBilling(session);
  return (
    <section className="past-due" aria-labelledby="past-due-title" data-testid="past-due-banner">
      <h2 id="past-due-title">Payment failed</h2>
      {notices.map((notice) => (
        <div key={notice.subscriptionId} className="past-due-notice" data-subscription={notice.subscriptionId}>
          <p data-testid="past-due-message">{notice.message}</p>
          <div className="actions">
            {notice.invoice.hostedInvoiceUrl && (
              <a className="button" href={notice.invoice.hostedInvoiceUrl} target="_blank" rel="noreferrer">
                Pay now<span className="visually-hidden"> (opens Stripe's invoice page in a new tab)</span>
              </a>
            )}
            {canManage && notices[0] === notice && (
              <button type="button" onClick={updateCard} disabled={busy} aria-busy={busy}>
                {busy ? "Opening…" : "Update card"}
              </button>
            )}
          </div>
        </div>
      ))}
      {!canManage && <p className="note">Ask an Owner or Admin of your organization to update the card.</p>}
      {error && <ManageError error={error} message={portalErrorMessage(error)} />}
    </section>
  );
}
