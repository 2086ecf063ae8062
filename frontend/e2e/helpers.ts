// What the browser tests share: the stack's URL, screenshots, signing in, paying on the local
// Checkout, and waiting for state that settles in the background.
import { expect, type Page } from "@playwright/test";
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";

const SHOTS = "artifacts/screenshots";
mkdirSync(SHOTS, { recursive: true });

export function app(path: string): string {
  const base = process.env.PSS_FRONTEND_URL;
  if (!base) throw new Error("PSS_FRONTEND_URL is not set (global setup starts the stack)");
  return `${base}${path}`;
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

/** One of the dev sign-in's users (the local stack's /env.json lists them). */
export async function signInAs(page: Page, label: string): Promise<void> {
  await page.goto(app("/sign-in"));
  await page.getByRole("button", { name: label }).click();
  await expect(page.getByRole("heading", { name: "Your modules" })).toBeVisible();
}

/**
 * A token the local stack accepts, for a caller its dev sign-in does not list (an Admin, a
 * fresh org): signed with the stack's published local-only secret and claims, as
 * tools/local-stack's `dev_token` signs them.
 */
export function localToken(org: string, user: string, role: "Owner" | "Admin" | "Member"): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part({
    iss: "pss-portal-local",
    aud: "pss-billing",
    sub: user,
    org_id: org,
    role,
    iat: now,
    nbf: now,
    exp: now + 3600,
  })}`;
  const signature = createHmac("sha256", "local-dev-jwt-secret-not-for-production-use").update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

/** Signs in by pasting a bearer token, as the sign-in page offers. */
export async function signInWithToken(page: Page, token: string): Promise<void> {
  await page.goto(app("/sign-in"));
  await page.getByLabel("Bearer token").fill(token);
  await page.getByRole("button", { name: "Use this token" }).click();
  await expect(page.getByRole("heading", { name: "Your modules" })).toBeVisible();
}

/** Pays on the local Checkout as a US company (no tax in the fixture's table), with `card`. */
export async function payOnCheckout(page: Page, card: string): Promise<void> {
  await expect(page.getByRole("heading", { name: "Subscribe" })).toBeVisible();
  // Checkout requires the billing address (billing_address_collection=required).
  await page.getByLabel("Country").selectOption("US");
  await page.getByLabel("Address line 1").fill("1 Main Street");
  await page.getByLabel("City").fill("Springfield");
  await page.getByLabel("Postal code").fill("12345");
  await page.getByLabel("Card number").fill(card);
  await page.getByLabel("Expiry (MM / YY)").fill("12 / 34");
  await page.getByLabel("CVC").fill("123");
  await page.getByRole("button", { name: "Subscribe" }).click();
}

/** Assertions inside `eventually`: fail fast, so the page is reloaded and checked again. */
export const soon = expect.configure({ timeout: 2_000 });

/** Reloads until `check` passes: webhooks and the authorizer's 1 s cache settle in the background. */
export async function eventually(page: Page, check: () => Promise<void>): Promise<void> {
  await expect(async () => {
    await page.reload();
    await check();
  }).toPass({ timeout: 30_000, intervals: [500, 1000, 1000] });
}

/** Fails when the page scrolls sideways (content wider than the viewport). */
export async function expectNoSidewaysScroll(page: Page, what: string): Promise<void> {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow, `${what} scrolls sideways`).toBeLessThanOrEqual(0);
}

/** A date as the app shows it ("Dec 15, 2026"): Unix seconds, UTC, en-US medium. */
export function shownDate(unixSeconds: number): string {
  return new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeZone: "UTC" }).format(new Date(unixSeconds * 1000));
}

/** Matches the date `days` after one of the instants between `from` and `to` (Unix seconds): a
 * trial started between them ends on one of these, even across midnight UTC. */
export function dateAfter(days: number, from: number, to: number): string {
  const dates = new Set([shownDate(from + days * 86_400), shownDate(to + days * 86_400)]);
  return `(?:${[...dates].map((d) => d.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})`;
}

/** The local Checkout's company fields: a German company with its VAT number. */
export async function enterGermanCompany(page: Page): Promise<void> {
  await page.getByLabel("Company name").fill("Musterfirma GmbH");
  await page.getByLabel("Country").selectOption("DE");
  await page.getByLabel("Address line 1").fill("Friedrichstraße 123");
  await page.getByLabel("City").fill("Berlin");
  await page.getByLabel("Postal code").fill("10117");
  await page.getByLabel("VAT number").fill("DE123456789");
}

/** POSTs JSON to one of the fixture Stripe's test controls (`/_test/...`, see
 * tests/emulators/fake_stripe.py) of the stack PSS_STRIPE_URL names. */
export async function stripeControl(path: string, body: unknown): Promise<unknown> {
  const base = process.env.PSS_STRIPE_URL;
  if (!base) throw new Error("PSS_STRIPE_URL is not set (global setup starts the stack)");
  const reply = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await reply.text();
  if (!reply.ok) throw new Error(`${path}: ${reply.status} ${text}`);
  return text ? (JSON.parse(text) as unknown) : null;
}

/** Moves the fixture Stripe's clock `seconds` ahead: renewals, trial ends and period-end
 * cancellations falling due happen, in time order. Answers the new "now" (Unix seconds). */
export async function advanceStripeClock(seconds: number): Promise<number> {
  const answer = (await stripeControl("/_test/clock", { advance_seconds: seconds })) as { now: number };
  return answer.now;
}

/** Pays on the local hosted invoice page (Stripe's invoice page stand-in) with `card`. */
export async function payOnInvoicePage(page: Page, card: string): Promise<void> {
  await expect(page.getByRole("heading", { name: "Pay invoice" })).toBeVisible();
  await page.getByLabel("Card number").fill(card);
  await page.getByLabel("Expiry (MM / YY)").fill("12 / 34");
  await page.getByLabel("CVC").fill("123");
  await page.getByRole("button", { name: /^Pay / }).click();
  await expect(page.getByRole("heading", { name: "Invoice paid" })).toBeVisible();
}
