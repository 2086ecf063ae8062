import { describe, expect, it } from "vitest";
import type { Invoice } from "./api/billing";
import { invoiceFigures } from "./invoice";

const base = { currency: "usd", status: "paid" as const, amountPaid: 0, amountDue: 0 };

describe("invoiceFigures", () => {
  it("shows subtotal, tax, the discount as a negative, and the total, to the cent", () => {
    // $99.00 − 10 % ($9.90) = $89.10, plus 19 % VAT ($16.93) = $106.03.
    expect(invoiceFigures({ ...base, subtotal: 9900, tax: 1693, discount: 990, total: 10603 }, "en-US")).toEqual({
      subtotal: "$99.00",
      tax: "$16.93",
      discount: "-$9.90",
      total: "$106.03",
    });
  });
  it("leaves out a tax and a discount of nothing", () => {
    expect(invoiceFigures({ ...base, subtotal: 9900, tax: 0, discount: 0, total: 9900 }, "en-US")).toEqual({
      subtotal: "$99.00",
      tax: null,
      discount: null,
      total: "$99.00",
    });
  });
  it("shows a discount given as a negative amount as a negative too", () => {
    expect(invoiceFigures({ ...base, subtotal: 4900, tax: 0, discount: -500, total: 4400 }, "en-US").discount).toBe("-$5.00");
  });
  it("falls back to what was paid or is due when the API gives no breakdown", () => {
    const old = { currency: "usd", status: "open", amountPaid: 0, amountDue: 4900 } as unknown as Invoice;
    expect(invoiceFigures(old, "en-US")).toEqual({ subtotal: "$49.00", tax: null, discount: null, total: "$49.00" });
    expect(invoiceFigures({ ...old, status: "paid", amountPaid: 9900 }, "en-US").total).toBe("$99.00");
  });
});
