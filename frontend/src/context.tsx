import { createContext, useContext } from "react";
import type { BillingApi } from "./api/billing";
import type { Session } from "./auth";
import type { AppConfig } from "./config";

export interface AppState {
  config: AppConfig;
  session: Session | null;
  api: BillingApi;
  signIn(token: string | null): void;
}

export const AppContext = createContext<AppState | null>(null);

export function useApp(): AppState {
  const state = useContext(AppContext);
  if (!state) throw new Error("useApp outside <AppContext>");
  return state;
}
