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
