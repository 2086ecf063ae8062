// Issue 21 in a real browser: an Admin of a fresh org starts a 14-day free trial of Lead
// Generation from pricing, through the local Checkout, as a company: name, a German billing
// address and a VAT number, and no card. The billing page says "Free trial until <14 days
// ahead>", and pricing offers no second trial of Lead Generation. Screenshots land in
// artifacts/screenshots/.
import { expect, test } from "@playwright/test";
import { app, dateAfter, enterGermanCompany, eventually, expectNoSidewaysScroll, localToken, shot, signInWithToken, soon } from "./helpers";

const ORG = "org_trial";

// This spec runs against the stack that offers trials (global-setup.ts starts it beside the
// paid-path one); `app()` reads PSS_FRONTEND_URL.
let paidStack: string | undefined;
test.beforeAll(() => {
  paidStack = process.env.PSS_FRONTEND_URL;
  process.env.PSS_FRONTEND_URL = process.env.PSS_TRIAL_FRONTEND_URL;
});
test.afterAll(() => {
  process.env.PSS_FRONTEND_URL = paidStack;
});
const now = () => Math.floor(Date.now() / 1000);

test("an Admin starts a free trial as a company with a VAT number and no card, and gets no second one", async ({ page }) => {
  await signInWithToken(page, localToken(ORG, "user_trial_admin", "Admin"));
  const from = now();

  // Pricing offers the trial: on the module's card, as the call to action, and in figures.
  await page.goto(app("/pricing?module=LeadGeneration"));
  await expect(page.getByLabel("Add Lead Generation")).toBeChecked();
  await expect(page.getByTestId("trial-LeadGeneration")).toHaveText("14-day free trial");
  await expect(page.getByRole("button", { name: "Subscribe" })).toHaveCount(0);
  const start = page.getByRole("button", { name: "Start 14-day free trial" });
  await expect(start).toBeVisible();
  const ends = dateAfter(14, from, now() + 60);
  await expect(page.getByTestId("trial-note")).toHaveText(
    new RegExp(`^No card needed\\. The trial ends on ${ends}; add a card before then to keep it\\.$`),
  );
  await expect(page.getByTestId("checkout-preview")).toHaveText(new RegExp(`^\\$0\\.00 today, then \\$99\\.00 per month from ${ends}$`));
  await shot(page, "16-trial-offer");

  // By keyboard to the local Checkout, which asks for the company's details and no card.
  await start.focus();
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/\/c\/pay\/cs_/);
  await expect(page.getByRole("heading", { name: "Start 14-day free trial" })).toBeVisible();
  await expect(page.getByText("Lead Generation")).toBeVisible();
  await expect(page.getByLabel("Card number")).toHaveCount(0);
  await expect(page.getByText("No card needed now.")).toBeVisible();
  await enterGermanCompany(page);
  await shot(page, "17-trial-checkout");
  await page.getByRole("button", { name: "Start 14-day free trial" }).click();

  // Back in the app: the trial runs, the module is unlocked, nothing was charged.
  await expect(page).toHaveURL(/\/billing\/success/);
  await expect(page.getByTestId("trial-started")).toHaveText(new RegExp(`^Free trial until ${ends}: nothing is charged until then\\.`));
  await expect(page.locator('ul.unlocked-list li[data-module="LeadGeneration"]')).toBeVisible();

  await page.goto(app("/billing"));
  const subscription = page.locator("li[data-subscription]");
  await expect(subscription).toHaveCount(1);
  await expect(subscription).toHaveAttribute("data-status", "trialing");
  await expect(subscription.getByTestId("subscription-status")).toHaveText(new RegExp(`^Free trial until ${ends}$`));
  await expect(subscription.locator('li[data-item="LeadGeneration"] .item-line')).toHaveText("Lead Generation — $99.00 / month");
  // Stripe's trial invoice: nothing due, no tax.
  await eventually(page, async () => {
    await soon(page.locator("tr[data-invoice]")).toHaveCount(1);
  });
  const invoice = page.locator("tr[data-invoice]");
  await expect(invoice.locator('[data-figure="total"]')).toHaveText("$0.00");
  await expect(invoice.locator('[data-figure="tax"]')).toHaveCount(0);
  // Stripe announces a trial's end 3 days ahead; 14 days ahead there is no banner yet.
  await expect(page.getByTestId("trial-ending")).toHaveCount(0);
  await shot(page, "18-billing-trial");
  await page.setViewportSize({ width: 360, height: 740 });
  await expectNoSidewaysScroll(page, "the billing page in a trial");
  await shot(page, "19-billing-trial-phone");
  await page.setViewportSize({ width: 1280, height: 720 });

  // No second trial of Lead Generation: it is the org's now, and its card offers none in
  // either period; a module never trialled still has one on a yearly checkout.
  await page.goto(app("/pricing"));
  await expect(page.getByTestId("owned-LeadGeneration")).toBeVisible();
  await expect(page.getByTestId("trial-LeadGeneration")).toHaveCount(0);
  // Monthly modules join the trialing plan: no checkout, no trial.
  await page.getByLabel("Add Email Automation").check();
  await expect(page.getByRole("button", { name: "Add to your plan" })).toBeVisible();
  await expect(page.getByRole("button", { name: /free trial/ })).toHaveCount(0);
  await page.getByLabel("Yearly").check();
  await expect(page.getByTestId("trial-LeadGeneration")).toHaveCount(0);
  await expect(page.getByTestId("trial-EmailAutomation")).toHaveText("14-day free trial");
  await shot(page, "20-pricing-after-trial");
});
