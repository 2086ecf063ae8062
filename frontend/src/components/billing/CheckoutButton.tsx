import type { BillingInterval, PaidModule } from "../../api/billing";
import { useApp } from "../../context";
import { useRedirect } from "../../hooks";
import { ErrorMessage } from "../Status";

/** POST /api/billing/checkout, then follow the returned URL (Stripe's, or the local stack's). */
export function CheckoutButton({
  services,
  interval,
  label,
}: {
  services: PaidModule[];
  interval: BillingInterval;
  label: string;
}) {
  const { api } = useApp();
  const { busy, error, go: start } = useRedirect(async () => {
    const origin = window.location.origin;
    const session = await api.checkout(services, interval, `${origin}/billing/success`, `${origin}/pricing?canceled=1`);
    return session.url;
  });
  return (
    <div className="checkout">
      <button type="button" className="primary" onClick={start} disabled={busy || services.length === 0} aria-busy={busy}>
        {busy ? "Opening checkout…" : label}
      </button>
      {error && <ErrorMessage error={error} />}
    </div>
  );
}
