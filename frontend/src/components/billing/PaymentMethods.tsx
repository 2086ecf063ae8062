import type { PaymentMethod } from "../../api/billing";

function describe(pm: PaymentMethod): string {
  if (pm.type === "card" && pm.last4) {
    const brand = pm.brand ? pm.brand.charAt(0).toUpperCase() + pm.brand.slice(1) : "Card";
    const expiry = pm.expMonth && pm.expYear ? `, expires ${String(pm.expMonth).padStart(2, "0")}/${pm.expYear}` : "";
    return `${brand} ending in ${pm.last4}${expiry}`;
  }
  const kind = TYPE_NAMES[pm.type] ?? pm.type;
  if (pm.type === "link" && pm.email) {
    return `${kind} (${pm.email})`;
  }
  const bank = pm.bankName ? ` at ${pm.bankName}` : "";
  return pm.last4 ? `${kind}${bank} ending in ${pm.last4}` : kind;
}

/** Stripe's payment method types, in words. */
const TYPE_NAMES: Record<string, string> = {
  sepa_debit: "SEPA Direct Debit",
  us_bank_account: "US bank account",
  bacs_debit: "Bacs Direct Debit",
  au_becs_debit: "BECS Direct Debit",
  acss_debit: "Pre-authorized debit",
  link: "Link",
};

export function PaymentMethods({ methods }: { methods: PaymentMethod[] }) {
  return (
    <section aria-labelledby="pm-title" className="card">
      <h2 id="pm-title">Payment methods</h2>
      {methods.length === 0 ? (
        <p className="empty">No payment method on file.</p>
      ) : (
        <ul className="payment-methods">
          {methods.map((pm) => (
            <li key={pm.id} data-payment-method={pm.id}>
              {describe(pm)}
              {pm.isDefault && <span className="badge ok">Default</span>}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
