// Test helpers: call the Worker as a client would, make unique ids, count D1 round trips, scan D1 for secrets.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import worker from "../src/index";

export const MASTER = {
  ORG_CREATE: env.MASTER_ADMIN_KEY_ORG_CREATE,
  PARTNER_ADMIN: env.MASTER_ADMIN_KEY_PARTNER_ADMIN,
  BILLING_SUSPEND: env.MASTER_ADMIN_KEY_BILLING_SUSPEND,
} as const;

let counter = 0;
/** A lower-case id unique within this test file's run (storage is per file). */
export const uniq = (label = "t") => `${label}_${Date.now().toString(36)}_${(counter++).toString(36)}`;

export interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  json?: unknown;
  body?: BodyInit;
  /** Send no CF-Connecting-IP, as a request through a service binding arrives. */
  viaBinding?: boolean;
}

export function request(path: string, o: CallOptions = {}): Request {
  const headers = new Headers(o.headers);
  // Each test request comes from its own client IP, so the per-IP limit (60/min) only bites where a test sets one.
  if (!headers.has("cf-connecting-ip") && !o.viaBinding) headers.set("cf-connecting-ip", `198.51.100.${counter++ % 250}-${uniq("ip")}`);
  let body = o.body;
  if (o.json !== undefined) {
    body = JSON.stringify(o.json);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  }
  // A redirect is an answer to assert on, not something to follow (as a browser's fetch with redirect: "manual").
  return new Request(`http://localhost${path}`, { method: o.method ?? (body ? "POST" : "GET"), headers, body, redirect: "manual" });
}

/** Through the Worker's real fetch handler, with the test bindings. */
export const call = (path: string, o: CallOptions = {}) => exports.default.fetch(request(path, o));

/** Through the Worker's fetch handler with bindings replaced (e.g. a secret unset, a counting DB). */
export async function callWithEnv(overrides: Partial<Env> & Record<string, unknown>, path: string, o: CallOptions = {}) {
  const ctx = createExecutionContext();
  const res = await worker.fetch(request(path, o), { ...env, ...overrides } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

export function orgBody(overrides: Record<string, unknown> = {}) {
  return {
    org_id: uniq("org"),
    name: "Acme Corp",
    domain: "general",
    tier: "starter",
    allowed_origins: "https://acme.example.com",
    ...overrides,
  };
}

export function createOrg(body: unknown, idempotencyKey: string = uniq("idem"), apiKey = MASTER.ORG_CREATE) {
  return call("/v1/admin/org/create", {
    headers: { "x-api-key": apiKey, "idempotency-key": idempotencyKey },
    json: body,
  });
}

/** A DB binding that counts round trips to D1: each batch, first, all, run, raw or exec is one (in sessions too). */
export function countingDb(db: D1Database) {
  const counter = { roundTrips: 0 };
  const wrapSession = (session: D1DatabaseSession): D1DatabaseSession =>
    new Proxy(session, {
      get(target, prop) {
        if (prop === "prepare") return (sql: string) => wrapStatement(target.prepare(sql));
        if (prop === "batch") return (...a: unknown[]) => (counter.roundTrips++, (target.batch as (...x: unknown[]) => unknown)(...a));
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  const wrapStatement = (s: D1PreparedStatement): D1PreparedStatement => {
    for (const m of ["first", "all", "run", "raw"] as const) {
      const original = (s[m] as (...a: unknown[]) => unknown).bind(s);
      (s as unknown as Record<string, unknown>)[m] = (...a: unknown[]) => (counter.roundTrips++, original(...a));
    }
    const bind = s.bind.bind(s);
    s.bind = (...values: unknown[]) => wrapStatement(bind(...values));
    return s;
  };
  const proxy = new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => wrapStatement(target.prepare(sql));
      if (prop === "withSession") return (...a: unknown[]) => wrapSession((target.withSession as (...x: unknown[]) => D1DatabaseSession)(...a));
      if (prop === "batch" || prop === "exec") {
        return (...a: unknown[]) => (counter.roundTrips++, (target[prop] as (...x: unknown[]) => unknown)(...a));
      }
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { db: proxy, counter };
}

/** A plaintext key of either format (format 2 has a "_" after the 8-character prefix). */
export const PLAINTEXT_KEY_PATTERN = /(ck_live_|sk_live_|kvqp_)[0-9A-HJKMNP-TV-Z]{8}_?[0-9A-HJKMNP-TV-Z]{18}/;

/** Every row of every table, as text, for secret scans. */
export async function dumpDatabase(db: D1Database = env.DB): Promise<string> {
  const { results: tables } = await db
    .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'`)
    .all<{ name: string }>();
  const parts: string[] = [];
  for (const { name } of tables) {
    const { results } = await db.prepare(`SELECT * FROM "${name}"`).all();
    parts.push(`${name}: ${JSON.stringify(results)}`);
  }
  return parts.join("\n");
}

export async function countRows(table: string, where = "1 = 1", ...binds: unknown[]): Promise<number> {
  const row = await env.DB.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`)
    .bind(...binds)
    .first<{ n: number }>();
  return row!.n;
}

export async function createPartner(name = "Reseller Inc") {
  const res = await call("/v1/admin/partners", {
    headers: { "x-api-key": MASTER.PARTNER_ADMIN, "idempotency-key": uniq("p") },
    json: { name },
  });
  if (res.status !== 201) throw new Error(`createPartner: ${res.status} ${await res.text()}`);
  return res.json<{ partner_id: string; partner_key: string; prefix: string }>();
}

export const PARTNER_ORGS = "/api/v1/partner/organizations";

export function provisionBody(overrides: Record<string, unknown> = {}) {
  const id = uniq("ext");
  return { externalId: id, email: `${id}@acme.example.com`, businessName: "Acme Corp", ...overrides };
}

export function provision(partnerKey: string, body: unknown, headers: Record<string, string> = {}) {
  return call(`${PARTNER_ORGS}/`, { headers: { "x-kelviq-partner-key": partnerKey, ...headers }, json: body });
}

export const partnerGet = (partnerKey: string, path: string) => call(path, { headers: { "x-kelviq-partner-key": partnerKey } });

export const SCOPE_KEYS = {
  BILLING_SUSPEND: env.MASTER_ADMIN_KEY_BILLING_SUSPEND,
  BILLING_ROTATE: env.MASTER_ADMIN_KEY_BILLING_ROTATE,
  ORG_USAGE_READ: env.MASTER_ADMIN_KEY_ORG_USAGE_READ,
  ORG_SUSPEND: env.MASTER_ADMIN_KEY_ORG_SUSPEND,
  ORG_REACTIVATE: env.MASTER_ADMIN_KEY_ORG_REACTIVATE,
  ORG_FORCE_ROTATE: env.MASTER_ADMIN_KEY_ORG_FORCE_ROTATE,
  ORG_FORCE_REVOKE: env.MASTER_ADMIN_KEY_ORG_FORCE_REVOKE,
} as const;

/** An operator-created org with its client key (api_key) and server key (server_api_key). */
export async function makeOrg(overrides: Record<string, unknown> = {}) {
  const body = orgBody(overrides);
  const res = await createOrg(body);
  if (res.status !== 201) throw new Error(`makeOrg: ${res.status} ${await res.text()}`);
  const json = await res.json<{ org_id: string; api_key: string; prefix: string; server_api_key: string; server_prefix: string }>();
  return { ...json, body };
}

export type Action = "billing-suspend" | "billing-rotate" | "suspend" | "reactivate" | "force-rotate" | "force-revoke";

export const ACTIONS: Record<Action, { path: (orgId: string) => string; scope: keyof typeof SCOPE_KEYS; confirm: boolean }> = {
  "billing-suspend": { path: (o) => `/v1/admin/billing/org/${o}/suspend`, scope: "BILLING_SUSPEND", confirm: false },
  "billing-rotate": { path: (o) => `/v1/admin/billing/org/${o}/rotate`, scope: "BILLING_ROTATE", confirm: false },
  suspend: { path: (o) => `/v1/admin/org/${o}/suspend`, scope: "ORG_SUSPEND", confirm: true },
  reactivate: { path: (o) => `/v1/admin/org/${o}/reactivate`, scope: "ORG_REACTIVATE", confirm: true },
  "force-rotate": { path: (o) => `/v1/admin/org/${o}/force-rotate`, scope: "ORG_FORCE_ROTATE", confirm: true },
  "force-revoke": { path: (o) => `/v1/admin/org/${o}/force-revoke`, scope: "ORG_FORCE_REVOKE", confirm: true },
};

export function act(action: Action, orgId: string, o: { idem?: string; body?: unknown; key?: string } = {}) {
  const a = ACTIONS[action];
  return call(a.path(orgId), {
    method: "POST",
    headers: { "x-api-key": o.key ?? SCOPE_KEYS[a.scope], "idempotency-key": o.idem ?? uniq("act") },
    json: o.body !== undefined ? o.body : a.confirm ? { confirm_org_id: orgId } : undefined,
  });
}

export const orgStatus = async (orgId: string) =>
  (await env.DB.prepare("SELECT status FROM organizations WHERE org_id = ?").bind(orgId).first<{ status: string }>())?.status;

export const liveKeys = (orgId: string) => countRows("api_keys", "org_id = ? AND revoked_at IS NULL", orgId);

/** Calls a self-serve route with an org key. */
export const asOrg = (apiKey: string, path: string, method = "GET") => call(path, { method, headers: { "x-api-key": apiKey } });
