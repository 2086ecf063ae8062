import { useEffect, useRef, useState } from "react";
import type { BillingApiError, BillingInterval, PlanPreview, Service, Subscription, SubscriptionOverview } from "../../api/billing";
import { useApp } from "../../context";
import { asApiError } from "../../hooks";
import {
  switchConfirmLabel,
  switchErrorMessage,
  switchLabel,
  switchLineLabel,
  switchNeedsNewPreview,
  switchSummary,
  switchedText,
} from "../../manage";
import { formatAmount } from "../../plan";
import { DataTable } from "../DataTable";
import { ManageError } from "./ManageError";

type Step =
  | { step: "idle" }
  | { step: "previewing" }
  | { step: "review"; preview: PlanPreview; confirming: boolean; repriced: boolean }
  | { step: "failed"; error: BillingApiError };

/**
 * "Switch to yearly" (or monthly): fetch what moving the whole plan costs (POST
 * /api/billing/interval/preview), show it, and switch on confirm with the preview's proration
 * date. Nothing is charged before the confirm.
 */
export function IntervalSwitch({
  sub,
  target,
  catalog,
  onChanged,
  onRecheck,
}: {
  sub: Subscription;
  target: BillingInterval;
  catalog: Service[];
  onChanged: (overview: SubscriptionOverview, notice: string) => void;
  /** Reload the plan (after paying an open invoice elsewhere). */
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
      const preview = await api.intervalPreview(target);
      setState({ step: "review", preview, confirming: false, repriced });
      setFocusTitle((n) => n + 1);
    } catch (err) {
      setState({ step: "failed", error: asApiError(err) });
    }
  };
  const cancel = () => {
    setState({ step: "idle" });
    setConfirmError(null);
    window.setTimeout(() => startRef.current?.focus(), 0);
  };
  const confirm = async (preview: PlanPreview) => {
    if (preview.prorationDate === null) {
      await fetchPreview(true);
      return;
    }
    setState({ step: "review", preview, confirming: true, repriced: false });
    setConfirmError(null);
    try {
      const change = await api.switchInterval(target, preview.prorationDate);
      onChanged(change.subscription, switchedText(change.interval, change.amountCharged, change.currency));
    } catch (err) {
      const error = asApiError(err);
      if (switchNeedsNewPreview(error)) {
        await fetchPreview(true);
        return;
      }
      setConfirmError(error);
      setState({ step: "review", preview, confirming: false, repriced: false });
    }
  };

  const label = switchLabel(target);
  if (state.step !== "review") {
    return (
      <div className="switch">
        <button
          ref={startRef}
          type="button"
          onClick={() => fetchPreview(false)}
          disabled={state.step === "previewing"}
          aria-busy={state.step === "previewing"}
        >
          {state.step === "previewing" ? "Getting the price…" : label}
        </button>
        {state.step === "failed" && (
          <ManageError error={state.error} message={switchErrorMessage(state.error, target, sub, catalog)} />
        )}
      </div>
    );
  }

  const { preview, confirming, repriced } = state;
  const period = target === "year" ? "yearly" : "monthly";
  // The charge waits on the invoice (declined, 3-D Secure): confirming again would not help.
  const unpaid = confirmError?.code === "payment_incomplete" || confirmError?.code === "payment_past_due";
  return (
    <section
      className="card preview"
      aria-labelledby={`switch-title-${sub.id}`}
      data-testid="switch-preview"
      onKeyDown={(e) => {
        if (e.key === "Escape" && !confirming) cancel();
      }}
    >
      <h3 id={`switch-title-${sub.id}`} ref={titleRef} tabIndex={-1}>
        Switch your plan to {period} billing
      </h3>
      {repriced && (
        <p role="status" className="note">
          The price changed since it was shown, so nothing was charged. Here are the new figures: confirm again to switch.
        </p>
      )}
      <p className="preview-summary" data-testid="switch-summary">
        {switchSummary(preview)}
      </p>
      <p className="note">
        Every module of the plan moves to {period} billing today; the time already paid for counts as a credit.
      </p>
      {preview.lines.length > 0 && (
        <DataTable caption={`What switching to ${period} billing charges today`} columns={["Line", "Amount"]}>
          {preview.lines.map((line, i) => (
            <tr key={i} data-line={line.service ?? ""}>
              <td className="wrap">{switchLineLabel(line, catalog)}</td>
              <td className="amount">{formatAmount(line.amount, preview.currency)}</td>
            </tr>
          ))}
        </DataTable>
      )}
      {confirmError && <ManageError error={confirmError} message={switchErrorMessage(confirmError, target, sub, catalog)} />}
      <div className="actions">
        {unpaid ? (
          <button
            type="button"
            onClick={() => {
              onRecheck();
              cancel();
            }}
          >
            I have paid: check my plan again
          </button>
        ) : (
          <button type="button" className="primary" onClick={() => confirm(preview)} disabled={confirming} aria-busy={confirming}>
            {confirming ? "Switching…" : switchConfirmLabel(preview)}
          </button>
        )}
        <button type="button" onClick={cancel} disabled={confirming}>
          Cancel
        </button>
      </div>
    </section>
  );
}
