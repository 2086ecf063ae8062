import { ServiceCard } from "../components/billing/ServiceCard";
import { ErrorMessage, Loading } from "../components/Status";
import { useApp } from "../context";
import { useLoad } from "../hooks";

/** Routes of the CRM that open a module (only Leads exists in this repository). */
const MODULE_PAGES: Partial<Record<string, string>> = { LeadGeneration: "/leads" };

export function DashboardPage() {
  const { api, session } = useApp();
  const [services, reload] = useLoad(() => api.services(), [api]);
  return (
    <section aria-labelledby="dashboard-title">
      <h1 id="dashboard-title">Your modules</h1>
      {!session && <p className="note">Sign in to see which modules your organization has.</p>}
      {services.state === "loading" && <Loading what="modules" />}
      {services.state === "error" && <ErrorMessage error={services.error} retry={reload} />}
      {services.state === "ready" && (
        <div className="grid">
          {services.data.map((service) => (
            <ServiceCard key={service.id} service={service} openHref={MODULE_PAGES[service.id]} />
          ))}
        </div>
      )}
    </section>
  );
}
