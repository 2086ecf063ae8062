import { describe, expect, it } from "vitest";
import { createBillingApi, toApiError } from "./billing";

describe("toApiError", () => {
  it("keeps the API's own words and the paywall's module", () => {
    const err = toApiError(403, {
      error: "subscription_required",
      message: "This feature requires a LeadGeneration subscription.",
      service: "LeadGeneration",
    });
    expect(err.message).toBe("This feature requires a LeadGeneration subscription.");
    expect(err.isSubscriptionRequired).toBe(true);
    expect(err.service).toBe("LeadGeneration");
  });
  it("falls back to words when the body has none", () => {
    expect(toApiError(503, "upstream").message).toMatch(/temporarily unavailable/);
    expect(toApiError(418, null).message).toBe("The billing service answered with an error (418).");
    expect(toApiError(403, { error: "forbidden", message: "Nope." }).isSubscriptionRequired).toBe(false);
  });
});

describe("createBillingApi", () => {
  it("sends the bearer token and turns an error body into a BillingApiError", async () => {
    const seen: Request[] = [];
    globalThis.fetch = (async (input: Request) => {
      seen.push(input);
      return new Response(
        JSON.stringify({ error: "no_billing_account", message: "Subscribe first." }),
        { status: 409, headers: { "content-type": "application/json" } },
      );
    }) as typeof fetch;
    const api = createBillingApi("http://api.test/", "tok123");
    await expect(api.portal("http://app.test/billing")).rejects.toMatchObject({
      status: 409,
      code: "no_billing_account",
      message: "Subscribe first.",
    });
    expect(seen[0]?.url).toBe("http://api.test/api/billing/portal");
    expect(seen[0]?.headers.get("authorization")).toBe("Bearer tok123");
  });
  it("reports an unreachable API in words", async () => {
    globalThis.fetch = (async () => {
      throw new TypeError("Failed to fetch");
    }) as typeof fetch;
    await expect(createBillingApi("http://api.test", null).services()).rejects.toMatchObject({
      code: "network_error",
    });
  });
});

describe("adding modules", () => {
  it("posts the preview's proration date and keeps a 402's invoice link", async () => {
    const seen: { url: string; body: unknown }[] = [];
    globalThis.fetch = (async (input: Request) => {
      seen.push({ url: input.url, body: await input.json() });
      return new Response(
        JSON.stringify({
          error: "payment_incomplete",
          message: "The payment needs action.",
          hostedInvoiceUrl: "https://invoice.stripe.test/i/in_1",
        }),
        { status: 402, headers: { "content-type": "application/json" } },
      );
    }) as typeof fetch;
    const api = createBillingApi("http://api.test", "tok");
    await expect(api.addModules(["EmailAutomation"], "month", 1_765_497_600)).rejects.toMatchObject({
      status: 402,
      code: "payment_incomplete",
      hostedInvoiceUrl: "https://invoice.stripe.test/i/in_1",
    });
    expect(seen).toEqual([
      {
        url: "http://api.test/api/billing/modules",
        body: { services: ["EmailAutomation"], interval: "month", prorationDate: 1_765_497_600 },
      },
    ]);
  });
  it("returns the preview as the API sends it", async () => {
    globalThis.fetch = (async () =>
      new Response(JSON.stringify({ mode: "checkout", amountDueToday: 4900 }), {
        status: 200,
        headers: { "content-type": "application/json" },
      })) as typeof fetch;
    await expect(createBillingApi("http://api.test", "tok").preview(["EmailAutomation"], "year")).resolves.toMatchObject({
      mode: "checkout",
      amountDueToday: 4900,
    });
  });
  it("drops an invoice link that is not a web address", () => {
    expect(toApiError(409, { error: "payment_pending", message: "Wait.", hostedInvoiceUrl: "javascript:alert(1)" }).hostedInvoiceUrl).toBeUndefined();
  });
});
