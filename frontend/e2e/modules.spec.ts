// Issue 19 in a real browser: an Admin of an org that pays monthly for Lead Generation adds Email
// Automation to that plan. The price is shown before anything is charged (today's proration,
// then the plan's new monthly total), confirmed, and the billing page lists both modules with
// their prices on one subscription. Screenshots land in artifacts/screenshots/.
import { expect, test } from "@playwright/test";
import { app, eventually, expectNoSidewaysScroll, localToken, payOnCheckout, shot, signInWithToken, soon } from "./helpers";

// An org of its own, so the order of the spec files does not matter; the second test builds on
// the first's monthly plan.
const ORG = "org_modules";
test.describe.configure({ mode: "serial" });

test("an Admin adds a module to the plan the org pays for, seeing the price before confirming", async ({ page }) => {
  await signInWithToken(page, localToken(ORG, "user_modules_admin", "Admin"));

  // The first module of the month interval goes through Checkout, as before.
  await page.goto(app("/pricing?module=LeadGeneration"));
  await expect(page.getByLabel("Add Lead Generation")).toBeChecked();
  await expect(page.getByRole("button", { name: "Add to your plan" })).toHaveCount(0);
  await page.getByRole("button", { name: "Subscribe" }).click();
  await payOnCheckout(page, "4242 4242 4242 4242");
  await expect(page.locator('ul.unlocked-list li[data-module="LeadGeneration"]')).toBeVisible();

  // The next one joins that plan: the call to action is "Add to your plan", with a preview.
  await page.goto(app("/pricing"));
  await expect(page.getByTestId("owned-LeadGeneration")).toBeVisible();
  await page.getByLabel("Add Email Automation").check();
  await expect(page.getByRole("button", { name: "Subscribe" })).toHaveCount(0);
  const add = page.getByRole("button", { name: "Add to your plan" });
  await add.click();

  const preview = page.getByTestId("plan-preview");
  await expect(preview).toHaveAttribute("data-mode", "add");
  const title = page.getByRole("heading", { name: "Add Email Automation to your plan" });
  await expect(title).toBeFocused();
  const summary = preview.getByTestId("preview-summary");
  await expect(summary).toHaveText(/^\$\d+\.\d\d today, then \$148\.00 per month from [A-Z][a-z]{2} \d{1,2}, \d{4}$/);
  const todayText = /^(\$\d+\.\d\d) today/.exec((await summary.textContent()) ?? "")?.[1] ?? "";
  const today = Number(todayText.slice(1));
  // Prorated: more than nothing, at most a whole month of Email Automation's $49. The plan began
  // seconds ago, so the rest of its period rounds to the full $49.00 (it falls below only about
  // 4½ minutes into a month: 4900 × 273 s / 2,678,400 s ≈ half a cent); the local stack has no
  // clock to move.
  expect(today).toBeGreaterThan(0);
  expect(today).toBeLessThanOrEqual(49);
  const line = preview.locator('tr[data-line="EmailAutomation"]');
  await expect(line).toHaveCount(1);
  await expect(line.locator("td").first()).toContainText("Remaining time on 1 × Email Automation");
  await expect(line.locator("td").last()).toHaveText(todayText);
  await shot(page, "12-add-preview");

  // Cancel charges nothing and gives the focus back; the keyboard opens the preview again.
  await preview.getByRole("button", { name: "Cancel" }).click();
  await expect(preview).toHaveCount(0);
  await expect(add).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(title).toBeFocused();
  await expect(summary).toContainText("then $148.00 per month from");

  await page.setViewportSize({ width: 360, height: 740 });
  await expectNoSidewaysScroll(page, "the preview");
  await shot(page, "13-add-preview-phone");
  await page.setViewportSize({ width: 1280, height: 720 });

  // The figure on the button is the one just shown, and the one charged.
  const confirmButton = preview.getByRole("button", { name: `Confirm and pay ${todayText}` });
  await confirmButton.focus();
  await page.keyboard.press("Enter");

  const added = page.getByTestId("plan-added");
  await expect(added).toBeFocused();
  await expect(added).toContainText(`Email Automation is now part of your plan. ${todayText} was charged today.`);
  await expect(added.locator('li[data-module="EmailAutomation"]')).toHaveText(/^Email Automation\s+Unlocked$/);
  await expect(page.getByTestId("owned-EmailAutomation")).toBeVisible();
  await expect(page.getByTestId("owned-LeadGeneration")).toBeVisible();
  await shot(page, "14-added-to-plan");

  await page.goto(app("/"));
  await eventually(page, async () => {
    await soon(page.locator('article[data-module="EmailAutomation"]')).toHaveAttribute("data-state", "unlocked");
  });
  await expect(page.locator('article[data-module="LeadGeneration"]')).toHaveAttribute("data-state", "unlocked");

  // One subscription holds both modules, each with its price; the proration has its invoice.
  await page.goto(app("/billing"));
  const subscriptions = page.locator("li[data-subscription]");
  await expect(subscriptions).toHaveCount(1);
  await expect(subscriptions.locator('li[data-item="LeadGeneration"] .item-line')).toHaveText("Lead Generation — $99.00 / month");
  await expect(subscriptions.locator('li[data-item="EmailAutomation"] .item-line')).toHaveText("Email Automation — $49.00 / month");
  await expect(subscriptions.getByTestId("plan-total")).toContainText("$148.00 per month for 2 modules");
  const proration = todayText.endsWith(".00") ? todayText.slice(0, -3) : todayText;
  await eventually(page, async () => {
    await soon(page.locator("tr[data-invoice]")).toHaveCount(2);
    await soon(page.locator("tr[data-invoice]").filter({ hasText: proration })).toContainText("paid");
    await soon(page.locator("tr[data-invoice]").filter({ hasText: "$99" })).toContainText("paid");
  });
  await expect(page.getByText("switch between monthly and yearly, or change")).toHaveCount(0);
  await shot(page, "15-billing-one-plan");
});

test("a yearly module on a monthly plan goes to Checkout for a yearly subscription", async ({ page }) => {
  await signInWithToken(page, localToken(ORG, "user_modules_admin", "Admin"));
  await page.goto(app("/pricing"));
  await page.getByLabel("Yearly").check();
  await page.getByLabel("Add Social Inbox").check();
  await expect(page.getByTestId("separate-plan-note")).toHaveText(
    "Your organization pays monthly. Yearly modules are billed on a separate yearly subscription, started through Checkout.",
  );
  await expect(page.getByRole("button", { name: "Add to your plan" })).toHaveCount(0);
  await page.getByRole("button", { name: "Subscribe" }).click();
  await expect(page).toHaveURL(/\/c\/pay\/cs_/);
  await expect(page.getByText("Social Inbox")).toBeVisible();
});
