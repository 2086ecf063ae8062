import type { BillingApiError } from "../../api/billing";

/** A managing call's error in words (`message`), with the open invoice's link when there is one to pay. */
export function ManageError({ error, message, linkLabel = "Pay on the invoice page" }: { error: BillingApiError; message: string; linkLabel?: string }) {
  return (
    <div className="error" role="alert" data-code={error.code}>
      <p>{message}</p>
      {error.hostedInvoiceUrl && (
        <p>
          <a href={error.hostedInvoiceUrl} target="_blank" rel="noreferrer">
            {linkLabel}
            <span className="visually-hidden"> (opens in a new tab)</span>
          </a>
        </p>
      )}
    </div>
  );
}
