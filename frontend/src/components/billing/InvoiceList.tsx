import { useEffect, useState } from "react";
import type { BillingApi, Invoice } from "../../api/billing";
import { BillingApiError } from "../../api/billing";
import { formatDate, formatMoney } from "../../format";
import { asApiError } from "../../hooks";
import { DataTable } from "../DataTable";
import { ErrorMessage, Loading } from "../Status";

const PAGE_SIZE = 10;

/** The org's invoices, newest first, paged with the API's `nextCursor`. */
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

  return (
    <section aria-labelledby="invoices-title" className="card">
      <h2 id="invoices-title">Invoices</h2>
      {invoices.length === 0 && !busy && !error && <p className="empty">No invoices yet.</p>}
      {invoices.length > 0 && (
        <DataTable caption="Invoices, newest first" columns={["Number", "Date", "Amount", "Status", "Links"]}>
          {invoices.map((inv) => (
            <tr key={inv.id} data-invoice={inv.id}>
              <td>{inv.number ?? (inv.status === "draft" ? "Draft" : "—")}</td>
              <td>{formatDate(inv.created)}</td>
              <td>{formatMoney(inv.status === "paid" ? inv.amountPaid : inv.amountDue, inv.currency)}</td>
              <td>{inv.status ?? "—"}</td>
              <td className="links">
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
              </td>
            </tr>
          ))}
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
