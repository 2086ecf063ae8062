import { useEffect } from "react";
import type { BillingInterval, PaidModule } from "../../api/billing";
import { useApp } from "../../context";
import { useRedirect } from "../../hooks";
import { PlanError } from "./AddToPlan";

/**
 * POST /api/billing/checkout, then follow the returned URL (Stripe's, or the local stack's).
 * A 409 `plan_exists` (the org already pays for a plan of this interval) calls `onPlanExists`,
 * so the page can offer "Add to your plan" instead.
 */
export function CheckoutButton({
  services,
  interval,
  label,
  onPlanExists,
}: {
  services: PaidModule[];
  interval: BillingInterval;
  label: string;
  onPlanExists?: () => void;
}) {
  const { api } = useApp();
  const { busy, error, go: start } = useRedirect(async () => {
    const origin = window.location.origin;
    const session = await api.checkout(services, interval, `${origin}/billing/success`, `${origin}/pricing?canceled=1`);
    return session.url;
  });
  useEffect(() => {
    if (error?.code === "plan_exists") onPlanExists?.();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [error]);
  return (
    <div className="checkout">
      <button type="button" className="primary" onClick={start} disabled={busy || services.length === 0} aria-busy={busy}>
        {busy ? "Opening checkout…" : label}
      </button>
      {error && <PlanError error={error} interval={interval} />}
    </div>
  );
}
