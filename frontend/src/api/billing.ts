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
export type SubscriptionItem = Schemas["SubscriptionItem"];
export type PlanPreviewLine = Schemas["PreviewLine"];

/** `trialWillEnd`: Stripe announced that the trial ends within 3 days. */
export type Subscription = Schemas["Subscription"];
/** With `trialDays` (0: no trials) and `trialedModules` (no second trial of these). */
export type SubscriptionOverview = Schemas["SubscriptionOverview"];
/** Cents; `tax` and `discount` are 0 when there is none. */
export type Invoice = Schemas["Invoice"];
export type InvoicePage = Schemas["InvoicePage"];
/** What buying modules costs, before anything is charged (POST /api/billing/preview). `trialDays`:
 * the free trial a checkout would start (then nothing is due today); null in add mode. */
export type PlanPreview = Schemas["PlanPreview"];
/** The modules added to a plan and the charge (POST /api/billing/modules). */
export type PlanChange = Schemas["PlanChange"];

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
  portal(returnUrl: string): Promise<string>;
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

export function createBillingApi(baseUrl: string, token: string | null): BillingApi {
  const client: Client = createClient<paths>({
    baseUrl: baseUrl.replace(/\/$/, ""),
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  return {
    services: async () => (await unwrap(client.GET("/api/billing/services"))).services,
    subscription: () => unwrap(client.GET("/api/billing/subscription")),
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
    addModules: (services, interval, prorationDate) =>
      unwrap(client.POST("/api/billing/modules", { body: { services, interval, prorationDate } })),
    portal: async (returnUrl) =>
      (await unwrap(client.POST("/api/billing/portal", { body: { returnUrl } }))).url,
    sync: (sessionId) =>
      unwrap(
        client.POST("/api/billing/sync", {
          params: { query: sessionId ? { session_id: sessionId } : {} },
        }),
      ),
    leads: () => unwrap(client.GET("/api/leads")),
  };
}
