import { useEffect, useRef, useState } from "react";
import type { BillingApiError, BillingInterval, PaidModule, PlanChange, PlanPreview, Service } from "../../api/billing";
import { useApp } from "../../context";
import { asApiError } from "../../hooks";
import { confirmLabel, formatAmount, intervalWord, moduleNames, needsNewPreview, planErrorMessage, previewSummary } from "../../plan";
import { trialCallToAction, trialNote } from "../../trial";
import { DataTable } from "../DataTable";
import { CheckoutButton } from "./CheckoutButton";

const UNPAID = ["payment_incomplete", "payment_pending", "payment_past_due"];

type Step =
  | { step: "idle" }
  | { step: "previewing" }
  | { step: "review"; preview: PlanPreview; confirming: boolean; repriced: boolean }
  | { step: "failed"; error: BillingApiError };

/** The error of a preview or an add, in words, with the invoice link when there is one to pay. */
export function PlanError({ error, interval }: { error: BillingApiError; interval: BillingInterval }) {
  return (
    <div className="error" role="alert" data-code={error.code}>
      <p>{planErrorMessage(error, interval)}</p>
      {error.hostedInvoiceUrl && (
        <p>
          <a href={error.hostedInvoiceUrl} target="_blank" rel="noreferrer">
            Open the invoice to finish paying
          </a>
        </p>
      )}
    </div>
  );
}

/**
 * "Add to your plan": fetch the preview, show what is charged today and from the next invoice,
 * then charge it on confirm with the preview's proration date. Remount (a new `key`) when the
 * selection or the interval changes, so a stale preview is never confirmed.
 */
export function AddToPlan({
  services,
  interval,
  catalog,
  onAdded,
  onRecheck,
}: {
  services: PaidModule[];
  interval: BillingInterval;
  catalog: Service[];
  onAdded: (change: PlanChange) => void;
  /** Reload what the org has (after paying an open invoice elsewhere). */
  onRecheck: () => void;
}) {
  const { api } = useApp();
  const [state, setState] = useState<Step>({ step: "idle" });
  const [confirmError, setConfirmError] = useState<BillingApiError | null>(null);
  const startRef = useRef<HTMLButtonElement>(null);
  const titleRef = useRef<HTMLHeadingElement>(null);
  const [focusTitle, setFocusTitle] = useState(0);

  useEffect(() => {
    if (focusTitle > 0) titleRef.current?.focus();
  }, [focusTitle]);

  const fetchPreview = async (repriced: boolean) => {
    setState({ step: "previewing" });
    try {
      const preview = await api.preview(services, interval);
      setState({ step: "review", preview, confirming: false, repriced });
      setFocusTitle((n) => n + 1);
    } catch (err) {
      setState({ step: "failed", error: asApiError(err) });
    }
  };

  const cancel = () => {
    setState({ step: "idle" });
    setConfirmError(null);
    // The start button is back once React renders the idle step.
    window.setTimeout(() => startRef.current?.focus(), 0);
  };

  const confirm = async (preview: PlanPreview) => {
    if (preview.prorationDate === null) {
      // Only a checkout-mode preview has none; it is never confirmed here.
      await fetchPreview(true);
      return;
    }
    setState({ step: "review", preview, confirming: true, repriced: false });
    setConfirmError(null);
    try {
      onAdded(await api.addModules(preview.services, preview.interval, preview.prorationDate));
    } catch (err) {
      const error = asApiError(err);
      if (needsNewPreview(error)) {
        // The figures shown are no longer what would be charged: show the new ones to confirm.
        await fetchPreview(true);
        if (error.code === "no_subscription") setConfirmError(error);
        return;
      }
      setConfirmError(error);
      setState({ step: "review", preview, confirming: false, repriced: false });
    }
  };

  if (state.step !== "review") {
    return (
      <div className="checkout">
        <button
          ref={startRef}
          type="button"
          className="primary"
          onClick={() => fetchPreview(false)}
          disabled={services.length === 0 || state.step === "previewing"}
          aria-busy={state.step === "previewing"}
        >
          {state.step === "previewing" ? "Getting the price…" : "Add to your plan"}
        </button>
        {state.step === "failed" && <PlanError error={state.error} interval={interval} />}
      </div>
    );
  }

  const { preview, confirming, repriced } = state;
  const names = moduleNames(preview.services, catalog);
  const summary = previewSummary(preview);
  // A checkout that starts a free trial (then nothing is due today).
  const trialDays = preview.mode === "checkout" ? (preview.trialDays ?? 0) : 0;
  // An invoice waits for payment (declined, 3-D Secure, past due): confirming again would not help.
  const unpaid = confirmError !== null && UNPAID.includes(confirmError.code);
  return (
    <section
      className="card preview"
      aria-labelledby="preview-title"
      data-testid="plan-preview"
      data-mode={preview.mode}
      onKeyDown={(e) => {
        if (e.key === "Escape" && !confirming) cancel();
      }}
    >
      <h2 id="preview-title" ref={titleRef} tabIndex={-1}>
        {preview.mode === "add" ? `Add ${names} to your plan` : `Subscribe to ${names}`}
      </h2>
      {repriced && (
        <p role="status" className="note">
          The price changed since it was shown, so nothing was charged. Here are the new figures: confirm again to pay them.
        </p>
      )}
      {preview.mode === "checkout" && (
        <p>
          Your organization has no {preview.interval === "year" ? "yearly" : "monthly"} plan yet, so these modules start one through
          Checkout.
        </p>
      )}
      {trialDays > 0 && preview.nextInvoice.date !== null && (
        <p className="note" data-testid="trial-note">
          {trialNote(preview.nextInvoice.date, preview.services.length)}
        </p>
      )}
      <p className="preview-summary" data-testid="preview-summary">
        {summary}
      </p>
      {preview.lines.length > 0 && (
        <DataTable caption={`Charged today for ${names}`} columns={["Description", "Amount"]}>
          {preview.lines.map((line, i) => (
            <tr key={i} data-line={line.service ?? ""}>
              <td className="wrap">{line.description}</td>
              <td className="amount">{formatAmount(line.amount, preview.currency)}</td>
            </tr>
          ))}
        </DataTable>
      )}
      {confirmError && <PlanError error={confirmError} interval={preview.interval} />}
      {preview.mode === "add" && unpaid ? (
        <div className="actions">
          <button
            type="button"
            onClick={() => {
              onRecheck();
              cancel();
            }}
          >
            I have paid: check my plan again
          </button>
          <button type="button" onClick={cancel}>
            Cancel
          </button>
        </div>
      ) : preview.mode === "add" ? (
        <>
          <p className="note">
            {formatAmount(preview.amountDueToday, preview.currency)} is charged now to your card on file, for the rest of the current
            billing period; your plan then renews at {formatAmount(preview.nextInvoice.amount, preview.currency)} per{" "}
            {intervalWord(preview.interval)}.
          </p>
          <div className="actions">
            <button
              type="button"
              className="primary"
              onClick={() => confirm(preview)}
              disabled={confirming}
              aria-busy={confirming}
            >
              {confirming ? "Paying…" : confirmLabel(preview)}
            </button>
            <button type="button" onClick={cancel} disabled={confirming}>
              Cancel
            </button>
          </div>
        </>
      ) : (
        <div className="actions">
          <CheckoutButton
            services={preview.services}
            interval={preview.interval}
            label={trialDays > 0 ? trialCallToAction(trialDays) : "Continue to Checkout"}
          />
          <button type="button" onClick={cancel}>
            Cancel
          </button>
        </div>
      )}
    </section>
  );
}
