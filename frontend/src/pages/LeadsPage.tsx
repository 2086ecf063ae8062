import { UpgradePrompt } from "../components/billing/UpgradePrompt";
import { DataTable } from "../components/DataTable";
import { ErrorMessage, Loading } from "../components/Status";
import { useApp } from "../context";
import { formatDate } from "../format";
import { useLoad } from "../hooks";

/** The paywalled page: its data, or the API's 403 `subscription_required` as an upgrade prompt. */
export function LeadsPage() {
  const { api } = useApp();
  const [leads, reload] = useLoad(() => api.leads(), [api]);
  return (
    <section aria-labelledby="leads-title">
      <h1 id="leads-title">Leads</h1>
      {leads.state === "loading" && <Loading what="leads" />}
      {leads.state === "error" &&
        (leads.error.isSubscriptionRequired ? <UpgradePrompt error={leads.error} /> : <ErrorMessage error={leads.error} retry={reload} />)}
      {leads.state === "ready" &&
        (leads.data.leads.length === 0 ? (
          <p className="empty" data-testid="leads-empty">
            No leads yet. New leads from your forms and imports appear here.
          </p>
        ) : (
          <DataTable caption="Leads" columns={["Name", "Company", "Status", "Added"]}>
            {leads.data.leads.map((lead) => (
              <tr key={lead.id}>
                <td>{lead.name ?? lead.email ?? lead.id}</td>
                <td>{lead.company ?? "—"}</td>
                <td>{lead.status ?? "—"}</td>
                <td>{formatDate(lead.createdAt)}</td>
              </tr>
            ))}
          </DataTable>
        ))}
    </section>
  );
}
