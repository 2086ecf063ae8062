// The billing API client, typed from openapi.json (src/api/schema.d.ts is generated from it by
// `npm run gen:api`, which npm install, `npm run check:types` and `npm run build` run first, so
// the types never drift from the document).

import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Service = Schemas["Service"];
export type ServiceModule = Schemas["ServiceModule"];
export type PaidModule = Schemas["CheckoutRequest"]["services"][number];
export type BillingInterval = Schemas["BillingInterval"];
export type PaymentMethod = Schemas["PaymentMethod"];
export type LeadPage = Schemas["LeadPage"];
export type PlanPreviewLine = Schemas["PreviewLine"];

// The managing fields (removing a module at period end, switching the interval, the open
// invoice of a failed payment) are added here on top of the generated types, so these types hold
// whether or not openapi.json describes them yet. Optional: an older API leaves them out.

/** `paidThrough`: Unix seconds, the end of the period paid for. `endsAt`: Unix seconds when the
 * module stops (removed at period end, or the whole plan cancels then); null while it renews. */
export type SubscriptionItem = Schemas["SubscriptionItem"] & {
  paidThrough?: number | null;
  endsAt?: number | null;
};

/** The invoice a failed or unfinished payment left open (status past_due, unpaid, incomplete). */
export interface OpenInvoice {
  id: string;
  /** Cents. */
  amountDue: number;
  currency: string;
  hostedInvoiceUrl: string | null;
  /** Unix seconds. */
  dueDate: number | null;
}

/** `trialWillEnd`: Stripe announced that the trial ends within 3 days. `interval`: the plan's. */
export type Subscription = Omit<Schemas["Subscription"], "items"> & {
  items: SubscriptionItem[];
  interval?: BillingInterval | null;
  openInvoice?: OpenInvoice | null;
};
/** With `trialDays` (0: no trials) and `trialedModules` (no second trial of these). */
export type SubscriptionOverview = Omit<Schemas["SubscriptionOverview"], "subscriptions"> & {
  subscriptions: Subscription[];
};
/** Cents; `tax` and `discount` are 0 when there is none. */
export type Invoice = Schemas["Invoice"];
export type InvoicePage = Schemas["InvoicePage"];
/** What buying modules costs, before anything is charged (POST /api/billing/preview). `trialDays`:
 * the free trial a checkout would start (then nothing is due today); null in add mode. */
export type PlanPreview = Omit<Schemas["PlanPreview"], "mode"> & {
  /** `switch`: the whole plan moves to `interval` (POST /api/billing/interval/preview). */
  mode: Schemas["PlanPreview"]["mode"] | "switch";
};
/** The modules added to a plan and the charge (POST /api/billing/modules). */
export type PlanChange = Omit<Schemas["PlanChange"], "subscription"> & { subscription: SubscriptionOverview };

/** A module removed at period end (DELETE /api/billing/modules/{service}: `endsAt` set) or kept
 * after all (POST .../resume: `endsAt` null), with the org's billing state after it. */
export interface ModuleChange {
  service: PaidModule;
  endsAt: number | null;
  subscription: SubscriptionOverview;
}

/** The plan moved to another interval (POST /api/billing/interval), and the charge. */
export interface IntervalChange {
  interval: BillingInterval;
  /** Cents charged now (the new period, less the credit for the unused time). */
  amountCharged: number;
  currency: string;
  invoiceId: string | null;
  hostedInvoiceUrl: string | null;
  subscription: SubscriptionOverview;
}

/** Where the billing portal opens: its start page, or straight on updating the card. */
export type PortalFlow = "payment_method_update";

/** An API failure, in words a person can act on. */
export class BillingApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** The module the paywall asks for (403 `subscription_required`). */
  readonly service: ServiceModule | undefined;
  /** Where the buyer can pay or authenticate an open invoice (402 `payment_incomplete`, 409 `payment_pending`). */
  readonly hostedInvoiceUrl: string | undefined;

  constructor(status: number, code: string, message: string, service?: ServiceModule, hostedInvoiceUrl?: string) {
    super(message);
    this.name = "BillingApiError";
    this.status = status;
    this.code = code;
    this.service = service;
    this.hostedInvoiceUrl = hostedInvoiceUrl;
  }

  get isSubscriptionRequired(): boolean {
    return this.status === 403 && this.code === "subscription_required" && !!this.service;
  }
}

const FALLBACK_MESSAGES: Record<number, string> = {
  401: "Your session has expired. Sign in again.",
  403: "You do not have access to this.",
  404: "This was not found.",
  429: "Too many requests; wait a minute and try again.",
  502: "Stripe could not be reached; try again shortly.",
  503: "Billing is temporarily unavailable; try again shortly.",
};

/** Turns any error body (or none) into a BillingApiError. */
export function toApiError(status: number, body: unknown): BillingApiError {
  if (body && typeof body === "object") {
    const { error, message, service, hostedInvoiceUrl } = body as Record<string, unknown>;
    if (typeof message === "string" && message.trim() !== "") {
      return new BillingApiError(
        status,
        typeof error === "string" ? error : "error",
        message,
        typeof service === "string" ? (service as ServiceModule) : undefined,
        typeof hostedInvoiceUrl === "string" && /^https?:\/\//.test(hostedInvoiceUrl) ? hostedInvoiceUrl : undefined,
      );
    }
  }
  return new BillingApiError(
    status,
    "error",
    FALLBACK_MESSAGES[status] ?? `The billing service answered with an error (${status}).`,
  );
}

export const NETWORK_ERROR_MESSAGE =
  "The billing service could not be reached. Check your connection and try again.";

type Client = ReturnType<typeof createClient<paths>>;

export interface BillingApi {
  services(): Promise<Service[]>;
  subscription(): Promise<SubscriptionOverview>;
  invoices(cursor?: string | null, limit?: number): Promise<InvoicePage>;
  paymentMethods(): Promise<PaymentMethod[]>;
  checkout(
    services: PaidModule[],
    interval: BillingInterval,
    successUrl: string,
    cancelUrl: string,
  ): Promise<{ sessionId: string; url: string }>;
  /** What adding `services` to the plan of `interval` costs, before anything is charged. */
  preview(services: PaidModule[], interval: BillingInterval): Promise<PlanPreview>;
  /** Adds `services` to the org's live plan of `interval`, charged as the preview said. */
  addModules(services: PaidModule[], interval: BillingInterval, prorationDate: number): Promise<PlanChange>;
  /** Stripe's billing portal (`flow`: deep-linked to updating the card). */
  portal(returnUrl: string, flow?: PortalFlow): Promise<string>;
  /** Removes `service` from the plan at the end of the period paid for. */
  removeModule(service: PaidModule): Promise<ModuleChange>;
  /** Undoes a removal before it takes effect (nothing is charged). */
  resumeModule(service: PaidModule): Promise<ModuleChange>;
  /** What moving the plan to `interval` (the target) costs, before anything is charged. */
  intervalPreview(interval: BillingInterval): Promise<PlanPreview>;
  /** Moves the plan to `interval`, charged as the preview of `prorationDate` said. */
  switchInterval(interval: BillingInterval, prorationDate: number): Promise<IntervalChange>;
  sync(sessionId?: string): Promise<SubscriptionOverview>;
  leads(): Promise<LeadPage>;
}

async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch {
    throw new BillingApiError(0, "network_error", NETWORK_ERROR_MESSAGE);
  }
  if (result.response.ok && result.data !== undefined) return result.data;
  throw toApiError(result.response.status, result.error);
}

/** A JSON call outside the generated paths (the managing endpoints), failing as `unwrap` does. */
async function send<T>(base: string, token: string | null, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(
      new Request(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }),
    );
  } catch {
    throw new BillingApiError(0, "network_error", NETWORK_ERROR_MESSAGE);
  }
  const text = await response.text().catch(() => "");
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  if (response.ok && parsed !== undefined && typeof parsed === "object") return parsed as T;
  throw toApiError(response.status, parsed);
}

export function createBillingApi(baseUrl: string, token: string | null): BillingApi {
  const base = baseUrl.replace(/\/$/, "");
  const client: Client = createClient<paths>({
    baseUrl: base,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  const module = (service: string) => `/api/billing/modules/${encodeURIComponent(service)}`;
  return {
    services: async () => (await unwrap(client.GET("/api/billing/services"))).services,
    subscription: async () => (await unwrap(client.GET("/api/billing/subscription"))) as SubscriptionOverview,
    invoices: (cursor, limit = 10) =>
      unwrap(
        client.GET("/api/billing/invoices", {
          params: { query: cursor ? { limit, cursor } : { limit } },
        }),
      ),
    paymentMethods: async () =>
      (await unwrap(client.GET("/api/billing/payment-methods"))).paymentMethods,
    checkout: (services, interval, successUrl, cancelUrl) =>
      unwrap(
        client.POST("/api/billing/checkout", {
          body: { services, interval, successUrl, cancelUrl },
        }),
      ),
    preview: (services, interval) =>
      unwrap(client.POST("/api/billing/preview", { body: { services, interval } })),
    addModules: async (services, interval, prorationDate) =>
      (await unwrap(client.POST("/api/billing/modules", { body: { services, interval, prorationDate } }))) as PlanChange,
    portal: async (returnUrl, flow) =>
      flow
        ? (await send<{ url: string }>(base, token, "POST", "/api/billing/portal", { returnUrl, flow })).url
        : (await unwrap(client.POST("/api/billing/portal", { body: { returnUrl } }))).url,
    removeModule: (service) => send(base, token, "DELETE", module(service)),
    resumeModule: (service) => send(base, token, "POST", `${module(service)}/resume`),
    intervalPreview: (interval) => send(base, token, "POST", "/api/billing/interval/preview", { interval }),
    switchInterval: (interval, prorationDate) =>
      send(base, token, "POST", "/api/billing/interval", { interval, prorationDate }),
    sync: async (sessionId) =>
      (await unwrap(
        client.POST("/api/billing/sync", {
          params: { query: sessionId ? { session_id: sessionId } : {} },
        }),
      )) as SubscriptionOverview,
    leads: () => unwrap(client.GET("/api/leads")),
  };
}
