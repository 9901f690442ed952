// A typed client for the organization and API-key authority: the operator (master keys), partner and org APIs.
// Types come from the service's OpenAPI document (client/schema.d.ts, `npm run client`); the runtime is
// openapi-fetch. Every POST that takes an Idempotency-Key gets one (a fresh UUID unless you pass your own), and a
// network error or a 5xx is retried with the SAME request and key, so a retry can never mint twice; a request that
// is neither a GET nor idempotent is never retried.
//
//   import { createAuthorityClient } from "./client";
//   const operator = createAuthorityClient({ baseUrl: "http://localhost:8787", apiKey: process.env.MASTER_ADMIN_KEY_ORG_CREATE });
//   const { data, error } = await operator.POST("/v1/admin/org/create", { body: { org_id: "org_acme", name: "Acme", domain: "general", tier: "starter", allowed_origins: "https://acme.example.com" } });
import createClient, { type Client, type Middleware } from "openapi-fetch";
import { IDEMPOTENT_POSTS } from "./idempotent";
import type { components, paths } from "./schema";

export type { components, paths };
export type AuthorityClient = Client<paths>;

export interface ClientOptions {
  /** The service's origin, e.g. https://keys.example.com or http://localhost:8787. */
  baseUrl: string;
  /** Sent as X-API-Key: the master key of an operator scope, or an org's server key (sk_live_…). */
  apiKey?: string;
  /** Sent as X-Kelviq-Partner-Key (kvqp_…). */
  partnerKey?: string;
  /** Retries of a network error or 5xx (GETs and idempotent POSTs only). Default 3. */
  retries?: number;
  /** The first retry's wait in ms (doubling, with jitter). Default 200. */
  retryDelayMs?: number;
  /** Another fetch (a service binding's, or a test's). */
  fetch?: (request: Request) => Promise<Response>;
}

const IDEMPOTENCY_KEY = "Idempotency-Key";

/** Retries a request that may safely be sent again: a GET, or one that carries an Idempotency-Key. */
export function retryingFetch(inner: (request: Request) => Promise<Response>, retries = 3, delayMs = 200) {
  return async (request: Request): Promise<Response> => {
    const retryable = request.method === "GET" || request.headers.has(IDEMPOTENCY_KEY);
    for (let attempt = 0; ; attempt++) {
      const last = !retryable || attempt >= retries;
      // The original stays unread for the next attempt; each attempt sends a copy (same body, same key).
      const sent = last ? request : request.clone();
      try {
        const res = await inner(sent);
        if (res.status < 500 || last) return res;
        await res.body?.cancel();
      } catch (err) {
        if (last) throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, delayMs * 2 ** attempt * (0.5 + Math.random() / 2)));
    }
  };
}

export function createAuthorityClient(options: ClientOptions): AuthorityClient {
  const inner = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const client = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    fetch: retryingFetch(inner, options.retries ?? 3, options.retryDelayMs ?? 200),
  });
  const credentials: Middleware = {
    onRequest({ request, schemaPath }) {
      if (options.apiKey && !request.headers.has("X-API-Key")) request.headers.set("X-API-Key", options.apiKey);
      if (options.partnerKey && !request.headers.has("X-Kelviq-Partner-Key")) request.headers.set("X-Kelviq-Partner-Key", options.partnerKey);
      // Set once, before the first attempt: every retry of this call carries the same key.
      if (request.method === "POST" && IDEMPOTENT_POSTS.has(schemaPath) && !request.headers.has(IDEMPOTENCY_KEY)) {
        request.headers.set(IDEMPOTENCY_KEY, crypto.randomUUID());
      }
      return request;
    },
  };
  client.use(credentials);
  return client;
}
