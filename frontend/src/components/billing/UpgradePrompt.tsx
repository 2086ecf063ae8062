import type { BillingApiError } from "../../api/billing";
import { onLinkClick } from "../../router";

/** The paywall's 403 `subscription_required` body, as an invitation to upgrade. */
export function UpgradePrompt({ error }: { error: BillingApiError }) {
  return (
    <section className="card upgrade" role="alert" aria-labelledby="upgrade-title" data-service={error.service}>
      <h2 id="upgrade-title">Upgrade to use this page</h2>
      <p>{error.message}</p>
      <p>
        Required module: <strong className="module-name">{error.service}</strong>
      </p>
      <a href={`/pricing?module=${error.service ?? ""}`} onClick={onLinkClick} className="button">
        See plans for {error.service}
      </a>
    </section>
  );
}
