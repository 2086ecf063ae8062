// An invoice's figures for the invoice list (issue 21): subtotal, tax and discount when there is
// any, and the total. Pure, unit-tested.

import type { Invoice } from "./api/billing";
import { formatAmount } from "./plan";

export interface InvoiceFigures {
  subtotal: string;
  /** null when the invoice carries no tax. */
  tax: string | null;
  /** A negative amount ("-$10.00"); null when the invoice has no discount. */
  discount: string | null;
  total: string;
}

type Amounts = Pick<Invoice, "subtotal" | "tax" | "discount" | "total" | "currency" | "status" | "amountPaid" | "amountDue">;

/** The figures in words; an API without the breakdown falls back to what was paid or is due. */
export function invoiceFigures(inv: Amounts, locale?: string): InvoiceFigures {
  const money = (cents: number) => formatAmount(cents, inv.currency, locale);
  const fallback = inv.status === "paid" ? inv.amountPaid : inv.amountDue;
  const total = inv.total ?? fallback;
  const tax = inv.tax ?? 0;
  const discount = inv.discount ?? 0;
  return {
    subtotal: money(inv.subtotal ?? total),
    tax: tax > 0 ? money(tax) : null,
    discount: discount !== 0 ? money(-Math.abs(discount)) : null,
    total: money(total),
  };
}
