import { describe, expect, it } from "vitest";
import type { Service } from "./api/billing";
import { purchasable, selectionTotal, yearlySaving } from "./pricing";

function service(id: Service["id"], monthly: number, yearly: number, extra: Partial<Service> = {}): Service {
  return {
    id,
    name: id,
    description: "",
    free: false,
    prices: [
      { interval: "month", unitAmount: monthly, currency: "usd", lookupKey: `${id}_m` },
      { interval: "year", unitAmount: yearly, currency: "usd", lookupKey: `${id}_y` },
    ],
    ...extra,
  };
}

describe("yearlySaving", () => {
  it("is twelve months minus the yearly price", () => {
    // $99/mo × 12 = $1,188; $999/yr saves $189 (15.9 %).
    const saving = yearlySaving(service("LeadGeneration", 9900, 99900));
    expect(saving?.amount).toBe(18900);
    expect(saving?.fraction).toBeCloseTo(0.1591, 3);
  });
  it("is none for a free module or when yearly is not cheaper", () => {
    expect(yearlySaving({ ...service("BasicCRM", 0, 0), free: true, prices: [] })).toBeNull();
    expect(yearlySaving(service("Integrations", 1000, 12000))).toBeNull();
  });
});

describe("selection", () => {
  const catalog = [
    service("LeadGeneration", 9900, 99900),
    service("EmailAutomation", 4900, 49900),
    service("SocialInbox", 7900, 79900, { unlocked: true }),
  ];
  it("sums the selected modules for the interval", () => {
    const selected = new Set(["LeadGeneration", "EmailAutomation"]);
    expect(selectionTotal(catalog, selected, "month")).toEqual({ amount: 14800, currency: "usd" });
    expect(selectionTotal(catalog, selected, "year")).toEqual({ amount: 149800, currency: "usd" });
  });
  it("never offers a module the org already has, or a free one", () => {
    expect(catalog.map((s) => purchasable(s, "month"))).toEqual([true, true, false]);
    expect(purchasable({ ...catalog[0]!, free: true }, "month")).toBe(false);
  });
});
