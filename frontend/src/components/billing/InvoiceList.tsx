import { useEffect, useState } from "react";
import type { BillingApi, Invoice } from "../../api/billing";
import { BillingApiError } from "../../api/billing";
import { formatDate } from "../../format";
import { asApiError } from "../../hooks";
import { invoiceFigures } from "../../invoice";
import { DataTable } from "../DataTable";
import { ErrorMessage, Loading } from "../Status";

const PAGE_SIZE = 10;

/** A figure the invoice does not carry (no tax, no discount): a dash, "none" to a screen reader. */
function None() {
  return (
    <>
      <span aria-hidden="true">—</span>
      <span className="visually-hidden">none</span>
    </>
  );
}

/** The org's invoices, newest first, paged with the API's `nextCursor`: each with its subtotal,
 * tax and discount (columns shown when any invoice has one) and total. */
export function InvoiceList({ api }: { api: BillingApi }) {
  const [invoices, setInvoices] = useState<Invoice[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [busy, setBusy] = useState(true);
  const [error, setError] = useState<BillingApiError | null>(null);

  const loadPage = (from: string | null) => {
    setBusy(true);
    setError(null);
    api.invoices(from, PAGE_SIZE).then(
      (page) => {
        setInvoices((seen) => (from ? [...seen, ...page.invoices] : page.invoices));
        setCursor(page.nextCursor);
        setBusy(false);
      },
      (err: unknown) => {
        setError(asApiError(err));
        setBusy(false);
      },
    );
  };
  useEffect(() => loadPage(null), [api]); // eslint-disable-line react-hooks/exhaustive-deps
  const withTax = invoices.some((inv) => invoiceFigures(inv).tax !== null);
  const withDiscount = invoices.some((inv) => invoiceFigures(inv).discount !== null);

  return (
    <section aria-labelledby="invoices-title" className="card">
      <h2 id="invoices-title">Invoices</h2>
      {invoices.length === 0 && !busy && !error && <p className="empty">No invoices yet.</p>}
      {invoices.length > 0 && (
        <DataTable
          caption="Invoices, newest first"
          stacked
          columns={["Number", "Date", "Subtotal", ...(withTax ? ["Tax"] : []), ...(withDiscount ? ["Discount"] : []), "Total", "Status", "Links"]}
        >
          {invoices.map((inv) => {
            const figures = invoiceFigures(inv);
            return (
              <tr key={inv.id} data-invoice={inv.id}>
                <td data-label="Number">{inv.number ?? (inv.status === "draft" ? "Draft" : "—")}</td>
                <td data-label="Date">{formatDate(inv.created)}</td>
                <td data-label="Subtotal" className="amount" data-figure="subtotal">
                  {figures.subtotal}
                </td>
                {withTax && (
                  <td data-label="Tax" className={figures.tax ? "amount" : "amount none"} data-figure="tax">
                    {figures.tax ?? <None />}
                  </td>
                )}
                {withDiscount && (
                  <td data-label="Discount" className={figures.discount ? "amount" : "amount none"} data-figure="discount">
                    {figures.discount ?? <None />}
                  </td>
                )}
                <td data-label="Total" className="amount total" data-figure="total">
                  {figures.total}
                </td>
                <td data-label="Status">{inv.status ?? "—"}</td>
                <td data-label="Links" className={inv.hostedInvoiceUrl || inv.invoicePdf ? "links" : "links none"}>
                  <span>
                    {inv.hostedInvoiceUrl && (
                      <a href={inv.hostedInvoiceUrl} target="_blank" rel="noreferrer">
                        View<span className="visually-hidden"> invoice {inv.number}</span>
                      </a>
                    )}
                    {inv.invoicePdf && (
                      <a href={inv.invoicePdf} target="_blank" rel="noreferrer">
                        PDF<span className="visually-hidden"> of invoice {inv.number}</span>
                      </a>
                    )}
                  </span>
                </td>
              </tr>
            );
          })}
        </DataTable>
      )}
      {busy && <Loading what="invoices" />}
      {error && <ErrorMessage error={error} retry={() => loadPage(cursor)} />}
      {cursor && !busy && (
        <button type="button" onClick={() => loadPage(cursor)}>
          Show older invoices
        </button>
      )}
    </section>
  );
}
