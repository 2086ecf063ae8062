import { useEffect, useState } from "react";
import type { BillingInterval, PaidModule, PlanPreview, Service, SubscriptionOverview } from "../../api/billing";
import { useApp } from "../../context";
import { previewSummary } from "../../plan";
import { trialCallToAction, trialNote, trialOffer, trialUsedNote, withPreview } from "../../trial";
import { CheckoutButton } from "./CheckoutButton";

type PreviewState = { state: "loading" } | { state: "ready"; preview: PlanPreview } | { state: "failed" };

/**
 * The call to action for modules without a plan of their interval: "Subscribe", or "Start N-day
 * free trial" when the checkout starts one, with Checkout's first figures once the preview
 * (checkout mode) has them. The preview is for showing only: the button never waits for it.
 * Remount (a new `key`) when the selection or the interval changes.
 */
export function CheckoutOffer({
  services,
  interval,
  overview,
  catalog,
  onPlanExists,
}: {
  services: PaidModule[];
  interval: BillingInterval;
  overview: SubscriptionOverview | null;
  catalog: Service[];
  /** The org has a plan of this interval after all (the overview was behind). */
  onPlanExists: () => void;
}) {
  const { api } = useApp();
  const [preview, setPreview] = useState<PreviewState>({ state: "loading" });
  const [now] = useState(() => Math.floor(Date.now() / 1000));
  const key = services.join(",");

  useEffect(() => {
    if (services.length === 0) return;
    let live = true;
    // A short pause, so ticking several modules asks for one price.
    const timer = window.setTimeout(() => {
      api.preview(services, interval).then(
        (answer) => {
          if (!live) return;
          if (answer.mode === "add") onPlanExists();
          else setPreview({ state: "ready", preview: answer });
        },
        () => live && setPreview({ state: "failed" }),
      );
    }, 250);
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api, key, interval]);

  const shown = preview.state === "ready" ? preview.preview : null;
  const offer = withPreview(trialOffer(overview, services, now), shown, now);
  const label = offer.kind === "trial" ? trialCallToAction(offer.days) : "Subscribe";
  return (
    <>
      <CheckoutButton services={services} interval={interval} label={label} onPlanExists={onPlanExists} />
      {services.length > 0 && (
        <div className="full offer" data-testid="checkout-offer" data-trial={offer.kind} aria-live="polite">
          {shown && (
            <p className="preview-summary" data-testid="checkout-preview">
              {previewSummary(shown)}
            </p>
          )}
          {offer.kind === "trial" && (
            <p className="note" data-testid="trial-note">
              {trialNote(offer.endsAt, services.length)}
            </p>
          )}
          {offer.kind === "used" && (
            <p className="note" data-testid="trial-used-note">
              {trialUsedNote(offer.used, catalog)}
            </p>
          )}
          {preview.state === "failed" && (
            <p className="note" data-testid="preview-failed">
              The price could not be shown here; Checkout shows it, with any tax, before you pay.
            </p>
          )}
        </div>
      )}
    </>
  );
}
