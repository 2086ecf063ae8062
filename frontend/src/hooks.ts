import { useCallback, useEffect, useRef, useState } from "react";
import { BillingApiError, NETWORK_ERROR_MESSAGE } from "./api/billing";

export type Load<T> =
  | { state: "loading" }
  | { state: "error"; error: BillingApiError }
  | { state: "ready"; data: T };

export function asApiError(err: unknown): BillingApiError {
  return err instanceof BillingApiError ? err : new BillingApiError(0, "error", NETWORK_ERROR_MESSAGE);
}

/** Runs `load` when its dependencies change; `reload` runs it again, keeping the data shown meanwhile. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): [Load<T>, () => void] {
  const [result, setResult] = useState<Load<T>>({ state: "loading" });
  const [round, setRound] = useState(0);
  const lastDeps = useRef<unknown[] | null>(null);
  useEffect(() => {
    let live = true;
    const same = lastDeps.current?.length === deps.length && deps.every((d, i) => Object.is(d, lastDeps.current?.[i]));
    lastDeps.current = deps;
    // A `reload` keeps what is shown until the new answer arrives (no flash, focus stays put);
    // new dependencies start from "loading".
    setResult((shown) => (same && shown.state === "ready" ? shown : { state: "loading" }));
    load().then(
      (data) => live && setResult({ state: "ready", data }),
      (err: unknown) => live && setResult({ state: "error", error: asApiError(err) }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, round]);
  const reload = useCallback(() => setRound((r) => r + 1), []);
  return [result, reload];
}

/**
 * Asks the API for a URL (a Checkout session, the billing portal) and follows it. `busy` holds
 * until the browser leaves; a failure sets `error` and lets the user try again.
 */
export function useRedirect(fetchUrl: () => Promise<string>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<BillingApiError | null>(null);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      window.location.assign(await fetchUrl());
    } catch (err) {
      setError(asApiError(err));
      setBusy(false);
    }
  };
  return { busy, error, go };
}
