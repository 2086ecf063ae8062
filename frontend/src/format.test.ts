import { describe, expect, it } from "vitest";
import { formatDate, formatMoney, formatPercent } from "./format";

describe("formatMoney", () => {
  it("formats cents as dollars, without decimals when whole", () => {
    expect(formatMoney(9900, "usd", "en-US")).toBe("$99");
    expect(formatMoney(99900, "usd", "en-US")).toBe("$999");
    expect(formatMoney(2950, "usd", "en-US")).toBe("$29.50");
  });
  it("knows zero-decimal currencies", () => {
    expect(formatMoney(500, "jpy", "en-US")).toBe("¥500");
  });
  it("follows the locale", () => {
    expect(formatMoney(199900, "usd", "de-DE")).toBe("1.999\u00a0$");
  });
});

describe("formatDate", () => {
  it("renders unix seconds in UTC and a dash for none", () => {
    expect(formatDate(1_798_156_800, "en-US")).toBe("Dec 25, 2026");
    expect(formatDate(null)).toBe("—");
  });
});

it("formats a saving as a whole percent", () => {
  expect(formatPercent(0.159, "en-US")).toBe("16%");
});
