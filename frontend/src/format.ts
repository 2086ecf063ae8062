// Amounts and dates for people: Intl formatting, integer minor units in, text out.

const ZERO_DECIMAL = new Set(["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]);

/** `unitAmount` is in the currency's minor unit (cents for USD), as Stripe and the API give it. */
export function formatMoney(minorUnits: number, currency: string, locale?: string): string {
  const code = currency.toLowerCase();
  const divisor = ZERO_DECIMAL.has(code) ? 1 : 100;
  const amount = minorUnits / divisor;
  return new Intl.NumberFormat(locale, {
    style: "currency",
    currency: code.toUpperCase(),
    minimumFractionDigits: Number.isInteger(amount) ? 0 : 2,
    maximumFractionDigits: ZERO_DECIMAL.has(code) ? 0 : 2,
  }).format(amount);
}

/** Unix seconds → a date, e.g. "Dec 24, 2026". */
export function formatDate(unixSeconds: number | null | undefined, locale?: string): string {
  if (unixSeconds === null || unixSeconds === undefined) return "—";
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeZone: "UTC" }).format(
    new Date(unixSeconds * 1000),
  );
}

export function formatPercent(fraction: number, locale?: string): string {
  return new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 0 }).format(fraction);
}
