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

describe("managing the plan", () => {
  function recordingFetch(status: number, answer: unknown) {
    const seen: { method: string; url: string; body: unknown; auth: string | null }[] = [];
    globalThis.fetch = (async (input: Request) => {
      const text = await input.text();
      seen.push({ method: input.method, url: input.url, body: text ? JSON.parse(text) : null, auth: input.headers.get("authorization") });
      return new Response(JSON.stringify(answer), { status, headers: { "content-type": "application/json" } });
    }) as typeof fetch;
    return seen;
  }
  it("removes a module at period end and keeps it again", async () => {
    const seen = recordingFetch(200, { service: "EmailAutomation", endsAt: 1_798_761_600, subscription: { subscriptions: [] } });
    const api = createBillingApi("http://api.test/", "tok");
    await expect(api.removeModule("EmailAutomation")).resolves.toMatchObject({ endsAt: 1_798_761_600 });
    await api.resumeModule("EmailAutomation");
    expect(seen.map((s) => [s.method, s.url, s.body, s.auth])).toEqual([
      ["DELETE", "http://api.test/api/billing/modules/EmailAutomation", null, "Bearer tok"],
      ["POST", "http://api.test/api/billing/modules/EmailAutomation/resume", null, "Bearer tok"],
    ]);
  });
  it("previews and switches the interval with the preview's proration date", async () => {
    const seen = recordingFetch(200, { mode: "switch", interval: "year" });
    const api = createBillingApi("http://api.test", "tok");
    await api.intervalPreview("year");
    await api.switchInterval("year", 1_765_497_600);
    expect(seen.map((s) => [s.method, s.url, s.body])).toEqual([
      ["POST", "http://api.test/api/billing/interval/preview", { interval: "year" }],
      ["POST", "http://api.test/api/billing/interval", { interval: "year", prorationDate: 1_765_497_600 }],
    ]);
  });
  it("keeps a switch's 402 invoice link and a 409's code", async () => {
    recordingFetch(402, { error: "payment_incomplete", message: "Declined.", hostedInvoiceUrl: "https://invoice.stripe.test/i/in_2" });
    await expect(createBillingApi("http://api.test", "tok").switchInterval("year", 1)).rejects.toMatchObject({
      status: 402,
      code: "payment_incomplete",
      hostedInvoiceUrl: "https://invoice.stripe.test/i/in_2",
    });
    recordingFetch(409, { error: "change_scheduled", message: "A module ends." });
    await expect(createBillingApi("http://api.test", "tok").removeModule("LeadGeneration")).rejects.toMatchObject({ code: "change_scheduled" });
  });
  it("opens the portal on the card update when asked, and the general portal otherwise", async () => {
    const seen = recordingFetch(200, { url: "https://billing.stripe.test/p/session/bps_1" });
    const api = createBillingApi("http://api.test", "tok");
    await expect(api.portal("http://app.test/billing", "payment_method_update")).resolves.toBe("https://billing.stripe.test/p/session/bps_1");
    await api.portal("http://app.test/billing");
    expect(seen.map((s) => s.body)).toEqual([
      { returnUrl: "http://app.test/billing", flow: "payment_method_update" },
      { returnUrl: "http://app.test/billing" },
    ]);
  });
  it("reports an unreachable API and a body that is not JSON in words", async () => {
    globalThis.fetch = (async () => {
      throw new TypeError("Failed to fetch");
    }) as typeof fetch;
    await expect(createBillingApi("http://api.test", "tok").intervalPreview("month")).rejects.toMatchObject({ code: "network_error" });
    globalThis.fetch = (async () => new Response("<html>bad gateway</html>", { status: 502 })) as typeof fetch;
    await expect(createBillingApi("http://api.test", "tok").intervalPreview("month")).rejects.toMatchObject({
      status: 502,
      message: "Stripe could not be reached; try again shortly.",
    });
  });
});
