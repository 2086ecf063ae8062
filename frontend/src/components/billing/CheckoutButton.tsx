import { useState } from "react";
import type { BillingApiError, BillingInterval, PaidModule } from "../../api/billing";
import { useApp } from "../../context";
import { asApiError } from "../../hooks";
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
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<BillingApiError | null>(null);
  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const origin = window.location.origin;
      const session = await api.checkout(services, interval, `${origin}/billing/success`, `${origin}/pricing?canceled=1`);
      window.location.assign(session.url);
    } catch (err) {
      setError(asApiError(err));
      setBusy(false);
    }
  };
  return (
    <div className="checkout">
      <button type="button" className="primary" onClick={start} disabled={busy || services.length === 0} aria-busy={busy}>
        {busy ? "Opening checkout…" : label}
      </button>
      {error && <ErrorMessage error={error} />}
    </div>
  );
}
