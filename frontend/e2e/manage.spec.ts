// Issue 20 in a real browser: an Admin manages the plan the org pays for. (a) Removes a module at
// the end of the period (it stays unlocked until then; the row says "Ends on DATE") and keeps it
// after all ("Renews on DATE" again, nothing charged). (b) Switches the plan from monthly to
// yearly after seeing the preview: every module is then on its yearly price. (c) A renewal
// fails: the past-due banner shows on every page, "Update card" opens the portal, "Pay now"
// pays on the local hosted invoice page, and the banner goes. Screenshots land in
// artifacts/screenshots/.
import { expect, test, type Page } from "@playwright/test";
import {
  advanceStripeClock,
  app,
  eventually,
  expectNoSidewaysScroll,
  localToken,
  payOnCheckout,
  payOnInvoicePage,
  shot,
  signInWithToken,
  soon,
} from "./helpers";

test.describe.configure({ mode: "serial" });

const DATE = /[A-Z][a-z]{2} \d{1,2}, \d{4}/;
const DAY = 86_400;

/** Buys `names` (the pricing page's labels) monthly through the local Checkout with `card`. */
async function subscribeMonthly(page: Page, modules: { id: string; name: string }[], card = "4242 4242 4242 4242"): Promise<void> {
  const [first, ...rest] = modules;
  if (!first) throw new Error("no module to buy");
  await page.goto(app(`/pricing?module=${first.id}`));
  await expect(page.getByLabel(`Add ${first.name}`)).toBeChecked();
  for (const module of rest) await page.getByLabel(`Add ${module.name}`).check();
  await page.getByRole("button", { name: "Subscribe" }).click();
  await payOnCheckout(page, card);
  await expect(page).toHaveURL(/\/billing\/success\?session_id=cs_/);
  for (const module of modules) await expect(page.locator(`ul.unlocked-list li[data-module="${module.id}"]`)).toBeVisible();
}

const LEADS = { id: "LeadGeneration", name: "Lead Generation" };
const EMAIL = { id: "EmailAutomation", name: "Email Automation" };

test("an Admin removes a module at period end, keeps using it, and keeps it after all", async ({ page }) => {
  await signInWithToken(page, localToken("org_manage_remove", "user_manage_remove", "Admin"));
  await subscribeMonthly(page, [LEADS, EMAIL]);

  await page.goto(app("/billing"));
  const email = page.locator('li[data-item="EmailAutomation"]');
  const leads = page.locator('li[data-item="LeadGeneration"]');
  await expect(email).toContainText("Email Automation — $49.00 / month");
  await expect(leads).toContainText("Lead Generation — $99.00 / month");
  await expect(email.getByTestId("item-date")).toHaveText(new RegExp(`^Renews on ${DATE.source}$`));
  const renewal = ((await email.getByTestId("item-date").textContent()) ?? "").replace("Renews on ", "");
  await expect(leads.getByTestId("item-date")).toHaveText(`Renews on ${renewal}`);

  // The confirm step says what is kept and that nothing more is charged; Cancel changes nothing.
  const remove = email.getByRole("button", { name: "Remove at period end" });
  await remove.click();
  const confirmStep = email.getByRole("group", { name: "Remove Email Automation at period end" });
  await expect(confirmStep).toContainText(`You keep Email Automation until ${renewal} and are not charged for it again.`);
  const confirm = confirmStep.getByRole("button", { name: "Remove Email Automation at period end" });
  await expect(confirm).toBeFocused();
  await shot(page, "20-remove-confirm");
  await page.keyboard.press("Escape");
  await expect(confirmStep).toHaveCount(0);
  await expect(remove).toBeFocused();
  await expect(email.getByTestId("item-date")).toHaveText(`Renews on ${renewal}`);

  // Keyboard only: open the confirm step again and confirm.
  await page.keyboard.press("Enter");
  await expect(confirm).toBeFocused();
  await page.keyboard.press("Enter");
  const changed = page.getByTestId("plan-changed");
  await expect(changed).toBeFocused();
  await expect(changed).toHaveText(`Email Automation ends on ${renewal}. Until then you keep using it.`);
  await expect(email.getByTestId("item-date")).toHaveText(`Ends on ${renewal}`);
  await expect(email).toHaveAttribute("data-ending", "true");
  await expect(email.getByRole("button", { name: "Remove at period end" })).toHaveCount(0);
  await expect(leads.getByTestId("item-date")).toHaveText(`Renews on ${renewal}`);
  await shot(page, "21-module-ends");

  // Stored, not only shown: a reload says the same, and the module is still unlocked.
  await page.reload();
  await expect(email.getByTestId("item-date")).toHaveText(`Ends on ${renewal}`);
  await page.goto(app("/"));
  await expect(page.locator('article[data-module="EmailAutomation"]')).toHaveAttribute("data-state", "unlocked");

  // Undo before the date: it renews again.
  await page.goto(app("/billing"));
  await page.setViewportSize({ width: 360, height: 740 });
  await expectNoSidewaysScroll(page, "the billing page with a module ending");
  await shot(page, "22-module-ends-phone");
  await page.setViewportSize({ width: 1280, height: 720 });
  await email.getByRole("button", { name: "Keep Email Automation" }).click();
  await expect(changed).toHaveText(`Email Automation stays on your plan and renews on ${renewal}. Nothing was charged.`);
  await expect(email.getByTestId("item-date")).toHaveText(`Renews on ${renewal}`);
  await expect(email).toHaveAttribute("data-ending", "false");
  await expect(email.getByRole("button", { name: "Keep Email Automation" })).toHaveCount(0);
  await page.reload();
  await expect(email.getByTestId("item-date")).toHaveText(`Renews on ${renewal}`);
  await page.goto(app("/"));
  await expect(page.locator('article[data-module="EmailAutomation"]')).toHaveAttribute("data-state", "unlocked");
});

test("an Admin switches the plan to yearly after seeing the preview", async ({ page }) => {
  await signInWithToken(page, localToken("org_manage_switch", "user_manage_switch", "Admin"));
  await subscribeMonthly(page, [LEADS, EMAIL]);

  await page.goto(app("/billing"));
  const plan = page.locator("li[data-subscription]");
  await expect(plan).toHaveCount(1);
  await expect(plan.getByTestId("plan-total")).toContainText("$148.00 per month for 2 modules");
  const start = plan.getByRole("button", { name: "Switch to yearly" });
  await start.click();

  const preview = page.getByTestId("switch-preview");
  await expect(page.getByRole("heading", { name: "Switch your plan to yearly billing" })).toBeFocused();
  const summary = preview.getByTestId("switch-summary");
  // The yearly prices ($999 + $499), less the credit for the month just paid.
  await expect(summary).toHaveText(
    new RegExp(`^\\$[\\d,]+\\.\\d\\d today \\(credit for unused time included\\), then \\$1,498\\.00 per year from ${DATE.source}$`),
  );
  const today = /^(\$[\d,]+\.\d\d) today/.exec((await summary.textContent()) ?? "")?.[1] ?? "";
  const dollars = Number(today.replace(/[$,]/g, ""));
  expect(dollars).toBeGreaterThan(1_498 - 148 - 1);
  expect(dollars).toBeLessThanOrEqual(1_498);
  // The lines name the modules, never their ids.
  await expect(preview.locator('tr[data-line="LeadGeneration"]').first()).toContainText("Lead Generation");
  await expect(preview.locator('tr[data-line="EmailAutomation"]').first()).toContainText("Email Automation");
  await expect(preview).not.toContainText("LeadGeneration");
  await expect(preview).not.toContainText("EmailAutomation");
  await shot(page, "23-switch-preview");

  // Cancel charges nothing and gives the focus back.
  await preview.getByRole("button", { name: "Cancel" }).click();
  await expect(preview).toHaveCount(0);
  await expect(start).toBeFocused();
  await expect(plan.getByTestId("plan-total")).toContainText("$148.00 per month");

  await page.keyboard.press("Enter");
  await expect(summary).toContainText("then $1,498.00 per year from");
  await page.setViewportSize({ width: 360, height: 740 });
  await expectNoSidewaysScroll(page, "the switch preview");
  await shot(page, "24-switch-preview-phone");
  await page.setViewportSize({ width: 1280, height: 720 });

  await preview.getByRole("button", { name: /^Switch and pay \$[\d,]+\.\d\d$/ }).click();
  const changed = page.getByTestId("plan-changed");
  await expect(changed).toBeFocused();
  await expect(changed).toHaveText(/^Your plan is now billed yearly\. \$[\d,]+\.\d\d was charged today\.$/);

  const rows = async () => {
    await soon(page.locator('li[data-item="LeadGeneration"]')).toContainText("Lead Generation — $999.00 / year");
    await soon(page.locator('li[data-item="EmailAutomation"]')).toContainText("Email Automation — $499.00 / year");
    await soon(plan.getByTestId("plan-total")).toContainText("$1,498.00 per year for 2 modules");
    for (const id of ["LeadGeneration", "EmailAutomation"]) {
      await soon(page.locator(`li[data-item="${id}"]`).getByTestId("item-date")).toHaveText(new RegExp(`^Renews on ${DATE.source}$`));
    }
  };
  await rows();
  await expect(plan.getByRole("button", { name: "Switch to monthly" })).toBeVisible();
  await shot(page, "25-switched-to-yearly");
  // Stored: the reloaded page (and the webhook's sync after it) says the same.
  await eventually(page, rows);
  await page.goto(app("/"));
  for (const id of ["LeadGeneration", "EmailAutomation"]) {
    await expect(page.locator(`article[data-module="${id}"]`)).toHaveAttribute("data-state", "unlocked");
  }
});

test.describe("a failed renewal", () => {
  // Its own stack (global-setup.ts), as this test moves the fixture Stripe's clock a month ahead.
  const shared = { frontend: "", stripe: "" };
  test.beforeAll(() => {
    shared.frontend = process.env.PSS_FRONTEND_URL ?? "";
    shared.stripe = process.env.PSS_STRIPE_URL ?? "";
    process.env.PSS_FRONTEND_URL = process.env.PSS_CLOCK_FRONTEND_URL;
    process.env.PSS_STRIPE_URL = process.env.PSS_CLOCK_STRIPE_URL;
  });
  test.afterAll(() => {
    process.env.PSS_FRONTEND_URL = shared.frontend;
    process.env.PSS_STRIPE_URL = shared.stripe;
  });

  test("shows the past-due banner on every page until the invoice is paid", async ({ page, context }) => {
    await signInWithToken(page, localToken("org_manage_past_due", "user_manage_past_due", "Admin"));
    await subscribeMonthly(page, [LEADS]);

    // A card that attaches but declines every later charge becomes the default (the portal's
    // card form makes it the subscription's too), so the renewal fails.
    await page.goto(app("/billing"));
    await expect(page.getByTestId("past-due-banner")).toHaveCount(0);
    await page.getByRole("button", { name: "Manage billing" }).click();
    await expect(page.getByRole("heading", { name: "Manage billing" })).toBeVisible();
    await page.getByLabel("Card number").fill("4000 0000 0000 0341");
    await page.getByLabel("Expiry (MM / YY)").fill("10 / 33");
    await page.getByLabel("CVC").fill("123");
    await page.getByRole("button", { name: "Add card and make it the default" }).click();
    await expect(page.getByText("Your default card was updated.")).toBeVisible();
    await page.getByRole("link", { name: "Return to the app" }).click();
    await expect(page.getByRole("heading", { name: "Billing settings" })).toBeVisible();

    // A month and a day later the renewal is charged, and declined: past_due, with a grace period.
    await advanceStripeClock(32 * DAY);
    const banner = page.getByTestId("past-due-banner");
    await eventually(page, async () => {
      await soon(banner).toBeVisible();
    });
    await expect(page.getByRole("region", { name: "Payment failed" })).toBeVisible();
    await expect(banner.getByTestId("past-due-message")).toHaveText(
      new RegExp(`^Your payment of \\$99\\.00 failed\\. Pay now to keep your modules; access ends on ${DATE.source}\\.$`),
    );
    await expect(page.getByTestId("overall-status")).toHaveText("Payment past due");
    await shot(page, "26-past-due-billing");

    // On every page, and the modules stay unlocked during the grace period.
    for (const path of ["/", "/pricing", "/leads"]) {
      await page.goto(app(path));
      await expect(banner).toBeVisible();
    }
    await page.goto(app("/"));
    await expect(page.locator('article[data-module="LeadGeneration"]')).toHaveAttribute("data-state", "unlocked");
    await page.setViewportSize({ width: 360, height: 740 });
    await expectNoSidewaysScroll(page, "the past-due banner");
    await shot(page, "27-past-due-phone");
    await page.setViewportSize({ width: 1280, height: 720 });

    // "Update card" opens the portal (deep-linked to the card form) and comes back.
    await banner.getByRole("button", { name: "Update card" }).click();
    await expect(page.getByRole("heading", { name: "Update payment method" })).toBeVisible();
    await page.getByRole("link", { name: "Return to the app" }).click();
    await expect(banner).toBeVisible();

    // "Pay now" opens the invoice page in a new tab (keyboard: the link takes the focus and Enter).
    const payNow = banner.getByRole("link", { name: /^Pay now/ });
    await payNow.focus();
    const [invoicePage] = await Promise.all([context.waitForEvent("page"), page.keyboard.press("Enter")]);
    await invoicePage.waitForLoadState();
    await expect(invoicePage).toHaveURL(/\/i\/in_/);
    await expect(invoicePage.getByRole("button", { name: "Pay USD 99" })).toBeVisible();
    await payOnInvoicePage(invoicePage, "4242 4242 4242 4242");
    await shot(invoicePage, "28-invoice-paid");
    await invoicePage.close();

    await eventually(page, async () => {
      await soon(banner).toHaveCount(0);
      await soon(page.locator('article[data-module="LeadGeneration"]')).toHaveAttribute("data-state", "unlocked");
    });
    await page.goto(app("/billing"));
    await expect(page.getByTestId("overall-status")).toHaveText("Active");
    await expect(banner).toHaveCount(0);
  });
});
