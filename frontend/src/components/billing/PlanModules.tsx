import { useEffect, useRef, useState } from "react";
import type { BillingApiError, PaidModule, Service, Subscription, SubscriptionOverview } from "../../api/billing";
import { useApp } from "../../context";
import { asApiError } from "../../hooks";
import { keptText, moduleErrorMessage, moduleRows, removeConfirmText, removedText, type ModuleRow } from "../../manage";
import { ManageError } from "./ManageError";

type Step = { step: "idle" } | { step: "confirm" } | { step: "busy"; what: "remove" | "keep" };

/** A module of the plan: its price, "Renews on" / "Ends on", and (Owner/Admin) remove at period end or keep it. */
function ModuleRowItem({
  row,
  canManage,
  onChanged,
}: {
  row: ModuleRow;
  canManage: boolean;
  onChanged: (overview: SubscriptionOverview, notice: string) => void;
}) {
  const { api } = useApp();
  const [state, setState] = useState<Step>({ step: "idle" });
  const [error, setError] = useState<BillingApiError | null>(null);
  const confirmRef = useRef<HTMLButtonElement>(null);
  const removeRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (state.step === "confirm") confirmRef.current?.focus();
  }, [state.step]);

  const run = async (what: "remove" | "keep", module: PaidModule) => {
    setState({ step: "busy", what });
    setError(null);
    try {
      const change = what === "remove" ? await api.removeModule(module) : await api.resumeModule(module);
      setState({ step: "idle" });
      onChanged(
        change.subscription,
        what === "remove" ? removedText(row.name, change.endsAt ?? row.date) : keptText(row.name, renewsOn(change.subscription, module)),
      );
    } catch (err) {
      setError(asApiError(err));
      setState({ step: what === "remove" ? "confirm" : "idle" });
    }
  };
  const cancel = () => {
    setState({ step: "idle" });
    setError(null);
    window.setTimeout(() => removeRef.current?.focus(), 0);
  };
  const busy = state.step === "busy";
  const module = row.module;

  return (
    <li data-item={row.module ?? row.name} data-ending={row.ending ? "true" : "false"} className="module-row">
      <span className="item-line">{row.line}</span>
      {row.dateText && (
        <span className={`item-date${row.ending ? " ending" : ""}`} data-testid="item-date">
          {row.dateText}
        </span>
      )}
      {canManage && module && (state.step === "idle" || (busy && state.what === "keep")) && (row.canRemove || row.canKeep) && (
        <span className="row-actions">
          {row.canRemove && (
            <button ref={removeRef} type="button" onClick={() => setState({ step: "confirm" })} disabled={busy}>
              Remove at period end<span className="visually-hidden"> ({row.name})</span>
            </button>
          )}
          {row.canKeep && (
            <button type="button" className="primary" onClick={() => run("keep", module)} disabled={busy} aria-busy={busy}>
              {busy ? "Keeping…" : `Keep ${row.name}`}
            </button>
          )}
        </span>
      )}
      {canManage && module && (state.step === "confirm" || (busy && state.what === "remove")) && (
        <div
          className="confirm"
          role="group"
          aria-label={`Remove ${row.name} at period end`}
          onKeyDown={(e) => {
            if (e.key === "Escape" && !busy) cancel();
          }}
        >
          <p>{removeConfirmText(row.name, row.date)}</p>
          <div className="actions">
            <button ref={confirmRef} type="button" className="primary" onClick={() => run("remove", module)} disabled={busy} aria-busy={busy}>
              {busy ? "Removing…" : `Remove ${row.name} at period end`}
            </button>
            <button type="button" onClick={cancel} disabled={busy}>
              Cancel
            </button>
          </div>
        </div>
      )}
      {error && <ManageError error={error} message={moduleErrorMessage(error, row.name)} />}
    </li>
  );
}

/** When `module` renews in the new overview (its paid-through date, else its plan's period end). */
function renewsOn(overview: SubscriptionOverview, module: PaidModule): number | null {
  for (const sub of overview.subscriptions) {
    const item = sub.items.find((i) => i.module === module);
    if (item) return item.paidThrough ?? sub.currentPeriodEnd ?? null;
  }
  return null;
}

/** The modules of one subscription, each with its own row. */
export function PlanModules({
  sub,
  catalog,
  canManage,
  onChanged,
}: {
  sub: Subscription;
  catalog: Service[];
  canManage: boolean;
  onChanged: (overview: SubscriptionOverview, notice: string) => void;
}) {
  const rows = moduleRows(sub, catalog);
  return (
    <ul className="items" aria-label="Modules on this subscription">
      {rows.map((row, i) => (
        <ModuleRowItem key={(row.module ?? "") + (sub.items[i]?.priceId ?? i)} row={row} canManage={canManage} onChanged={onChanged} />
      ))}
    </ul>
  );
}
