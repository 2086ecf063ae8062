import { useMemo, useState } from "react";
import { createBillingApi } from "./api/billing";
import { loadSession, saveToken, sessionFromToken, type Session } from "./auth";
import type { AppConfig } from "./config";
import { PastDueBanner } from "./components/billing/PastDueBanner";
import { AppContext, type AppState } from "./context";
import { BillingSettingsPage } from "./pages/BillingSettingsPage";
import { CheckoutSuccessPage } from "./pages/CheckoutSuccessPage";
import { DashboardPage } from "./pages/DashboardPage";
import { LeadsPage } from "./pages/LeadsPage";
import { PricingPage } from "./pages/PricingPage";
import { SignInPage } from "./pages/SignInPage";
import { onLinkClick, useLocation } from "./router";

const NAV = [
  { href: "/", label: "Modules" },
  { href: "/pricing", label: "Pricing" },
  { href: "/leads", label: "Leads" },
  { href: "/billing", label: "Billing" },
];

function Page({ path }: { path: string }) {
  switch (path) {
    case "/":
      return <DashboardPage />;
    case "/pricing":
      return <PricingPage />;
    case "/billing/success":
      return <CheckoutSuccessPage />;
    case "/billing":
      return <BillingSettingsPage />;
    case "/leads":
      return <LeadsPage />;
    case "/sign-in":
      return <SignInPage />;
    default:
      return <p>This page does not exist.</p>;
  }
}

export function App({ config }: { config: AppConfig }) {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const path = useLocation().pathname.replace(/\/$/, "") || "/";
  const state = useMemo<AppState>(
    () => ({
      config,
      session,
      api: createBillingApi(config.apiBaseUrl, session?.token ?? null),
      signIn(token) {
        saveToken(token);
        setSession(token ? sessionFromToken(token) : null);
      },
    }),
    [config, session],
  );
  return (
    <AppContext.Provider value={state}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header>
        <nav aria-label="Main">
          <ul>
            {NAV.map((item) => (
              <li key={item.href}>
                <a href={item.href} onClick={onLinkClick} aria-current={path === item.href ? "page" : undefined}>
                  {item.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <a href="/sign-in" onClick={onLinkClick} className="who">
          {session ? `${session.role} · ${session.org}` : "Sign in"}
        </a>
      </header>
      <PastDueBanner path={path} />
      <main id="main" tabIndex={-1}>
        <Page path={path} />
      </main>
    </AppContext.Provider>
  );
}
