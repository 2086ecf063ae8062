import { ErrorMessage, Loading } from "../components/Status";
import { useApp } from "../context";
import { useLoad } from "../hooks";
import { onLinkClick, useLocation } from "../router";
import { trialStatus } from "../trial";

/** Stripe's success_url: sync at once (no waiting for the webhook) and show what is unlocked. */
export function CheckoutSuccessPage() {
  const { api } = useApp();
  const sessionId = useLocation().searchParams.get("session_id") ?? undefined;
  const [overview, reload] = useLoad(() => api.sync(sessionId), [api, sessionId]);
  return (
    <section aria-labelledby="success-title">
      <h1 id="success-title">Thank you for subscribing</h1>
      {overview.state === "loading" && <Loading what="your new modules" />}
      {overview.state === "error" && <ErrorMessage error={overview.error} retry={reload} />}
      {overview.state === "ready" && (
        <>
          {overview.data.subscriptions
            .filter((sub) => sub.status === "trialing")
            .slice(0, 1)
            .map((sub) => (
              <p key={sub.id} data-testid="trial-started">
                {trialStatus(sub)}: nothing is charged until then. Add a card under Billing settings before it ends to keep your
                modules.
              </p>
            ))}
          {overview.data.entitlements.some((e) => e.unlocked && e.module !== "BasicCRM") ? (
            <>
              <p>These modules are unlocked for your organization:</p>
              <ul className="unlocked-list" aria-label="Unlocked modules">
                {overview.data.entitlements
                  .filter((e) => e.unlocked && e.module !== "BasicCRM")
                  .map((e) => (
                    <li key={e.module} data-module={e.module}>
                      {e.module} <span className="badge ok">Unlocked</span>
                    </li>
                  ))}
              </ul>
            </>
          ) : (
            <p role="status">
              The payment has not gone through yet, so no module is unlocked. This page updates when you{" "}
              <button type="button" onClick={reload}>
                check again
              </button>
              .
            </p>
          )}
          <p>
            <a href="/" onClick={onLinkClick}>
              Go to your modules
            </a>{" "}
            ·{" "}
            <a href="/billing" onClick={onLinkClick}>
              Billing settings
            </a>
          </p>
        </>
      )}
    </section>
  );
}
