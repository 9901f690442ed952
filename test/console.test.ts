// The owner console, through the Worker's fetch handler as a browser would call it (forms, cookies, redirects). The
// real-browser journey (Chromium, axe-core, screenshots) is test/browser/console.mjs.
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { BillingRpc } from "../src/billing/entrypoint";
import { hashPassword } from "../src/features/onboarding/crypto";
import { SIGN_IN_FAILED, SIGN_IN_FAILURE_FLOOR_MS } from "../src/features/console/handler";
import { deliver, plainText, spyEmail, subjectOf } from "./email";
import { act, call, countRows, dumpDatabase, orgBody, PLAINTEXT_KEY_PATTERN, uniq } from "./helpers";

afterEach(() => vi.restoreAllMocks());
const billing = exports.BillingService as unknown as BillingRpc;
const PASSWORD = "correct horse battery staple";

/** A browser's same-origin form POST (what hono/csrf accepts), with the session cookie if given. */
const form = (path: string, fields: Record<string, string>, cookie?: string, extra: Record<string, string> = {}) =>
  call(path, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin", ...(cookie ? { cookie } : {}), ...extra },
    body: new URLSearchParams(fields).toString(),
  });
const get = (path: string, cookie?: string) => call(path, { headers: cookie ? { cookie } : {} });
const cookieOf = (res: Response) => /(__Host-console=[^;]+)/.exec(res.headers.get("set-cookie") ?? "")?.[1];
const formIdIn = (html: string) => /name="form_id" value="([^"]+)"/.exec(html)?.[1];
const keysIn = (html: string) => [...html.matchAll(/value="((?:ck_live_|sk_live_)[0-9A-Z]{8}_[0-9A-Z]{31})"/g)].map((m) => m[1]);

/** An org made by a paid checkout (no keys), its owner with a password set. */
async function ownedOrg(email = `${uniq("owner")}@example.com`) {
  const body = { ...orgBody(), owner_email: email };
  expect((await billing.createOrg(uniq("evt"), body)).status).toBe(201);
  await env.DB.prepare("UPDATE users SET password_hash = ?, password_set_at = ? WHERE lower(email) = lower(?)")
    .bind(await hashPassword(PASSWORD), new Date().toISOString(), email)
    .run();
  const user = await env.DB.prepare("SELECT id FROM users WHERE lower(email) = lower(?)").bind(email).first<{ id: number }>();
  return { orgId: body.org_id, email, userId: user!.id };
}

async function signIn(email: string, password = PASSWORD) {
  const res = await form("/console/sign-in", { email, password });
  expect(res.status).toBe(303);
  return cookieOf(res)!;
}

describe("signing in", () => {
  it("a session is a random id in a __Host- cookie (HttpOnly, Secure, SameSite=Lax), stored only as a hash", async () => {
    const o = await ownedOrg();
    const res = await form("/console/sign-in", { email: o.email.toUpperCase(), password: PASSWORD });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/console");
    const setCookie = res.headers.get("set-cookie")!;
    expect(setCookie).toMatch(/^__Host-console=[A-Za-z0-9_-]{43}; Max-Age=43200; Path=\/; HttpOnly; Secure; SameSite=Lax/);
    const id = cookieOf(res)!.split("=")[1];
    expect(await dumpDatabase()).not.toContain(id);
    expect(await countRows("console_sessions", "user_id = ?", o.userId)).toBe(1);
    // One org: straight to it.
    const home = await get("/console", cookieOf(res));
    expect(home.status).toBe(303);
    expect(home.headers.get("location")).toBe(`/console/orgs/${o.orgId}`);
    const overview = await get(`/console/orgs/${o.orgId}`, cookieOf(res));
    expect(overview.status).toBe(200);
    const html = await overview.text();
    expect(html).toContain(o.orgId);
    expect(html).toMatch(/0 of 10,000 interactions/);
    expect(overview.headers.get("content-security-policy")).toMatch(/script-src 'self'.*frame-ancestors 'none'/);
    expect(overview.headers.get("referrer-policy")).toBe("no-referrer");
    expect(await countRows("audit_log", "event_type = 'CONSOLE_SIGNED_IN' AND actor = ?", `user:${o.userId}`)).toBe(1);
  });

  it("failures are uniform: unknown account, wrong password, no password yet: the same 401 page, no sooner than the floor", async () => {
    const o = await ownedOrg();
    const noPassword = `${uniq("nopw")}@example.com`;
    await billing.createOrg(uniq("evt"), { ...orgBody(), owner_email: noPassword });
    const bodies: string[] = [];
    for (const [email, password] of [
      [o.email, "wrong password!!"],
      [`${uniq("nobody")}@example.com`, PASSWORD],
      [noPassword, PASSWORD],
    ]) {
      const started = Date.now();
      const res = await form("/console/sign-in", { email, password });
      expect(Date.now() - started).toBeGreaterThanOrEqual(SIGN_IN_FAILURE_FLOOR_MS - 5);
      expect(res.status).toBe(401);
      expect(cookieOf(res)).toBeUndefined();
      const html = await res.text();
      expect(html).toContain(SIGN_IN_FAILED);
      bodies.push(html.replace(/value="[^"]*@example\.com"/, ""));
    }
    expect(new Set(bodies).size).toBe(1);
  });

  it("throttled per account and per IP: 429 with Retry-After", async () => {
    const o = await ownedOrg();
    // The limiter counts in fixed 60 s windows, so a window may end during this test: wrong passwords (each from its
    // own IP, so only the account's limit applies) until the first 429, which comes after at least 10 of them.
    const statuses: number[] = [];
    for (let i = 0; i < 25 && statuses.at(-1) !== 429; i++) {
      statuses.push(
        (await form("/console/sign-in", { email: o.email, password: `wrong ${i} password` }, undefined, { "cf-connecting-ip": `203.0.113.${i}` })).status,
      );
    }
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.indexOf(429)).toBeGreaterThanOrEqual(10);
    expect(statuses.slice(0, -1).every((s) => s === 401)).toBe(true);
    // Right after, in the same window: even the right password is refused.
    const over = await form("/console/sign-in", { email: o.email, password: PASSWORD }, undefined, { "cf-connecting-ip": "203.0.113.99" });
    expect(over.status).toBe(429);
    expect(over.headers.get("retry-after")).toBe("60");
  });

  it("regression (found by the hostile suite, answered 500): a body that is no form is a form with no fields", async () => {
    for (const path of ["/console/forgot", "/console/sign-in"]) {
      const res = await call(path, {
        method: "POST",
        headers: { "content-type": "multipart/form-data; boundary=x", "sec-fetch-site": "same-origin" },
        body: ";l<?5+Q",
      });
      expect(res.status, path).toBeLessThan(500);
    }
  });

  it("a cross-site form POST is refused (hono/csrf): nothing happens", async () => {
    const o = await ownedOrg();
    const cookie = await signIn(o.email);
    const page = await (await get(`/console/orgs/${o.orgId}/keys`, cookie)).text();
    for (const headers of [
      { "sec-fetch-site": "cross-site", origin: "https://evil.example" },
      { "sec-fetch-site": "", origin: "null" },
    ]) {
      const res = await call(`/console/orgs/${o.orgId}/keys/create`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie, ...headers },
        body: new URLSearchParams({ form_id: formIdIn(page)! }).toString(),
      });
      expect(res.status).toBe(403);
    }
    expect(await countRows("api_keys", "org_id = ?", o.orgId)).toBe(0);
  });
});

describe("claim-to-mint and key actions", () => {
  it("create keys: the pair shown once (no-store), working; a double submit mints once; actions are audited as the user", async () => {
    const o = await ownedOrg();
    const cookie = await signIn(o.email);
    const keysPage = await get(`/console/orgs/${o.orgId}/keys`, cookie);
    const html = await keysPage.text();
    expect(html).toContain(">Create keys</button>");
    const formId = formIdIn(html)!;
    const created = await form(`/console/orgs/${o.orgId}/keys/create`, { form_id: formId }, cookie);
    expect(created.status).toBe(200);
    expect(created.headers.get("cache-control")).toBe("no-store");
    const shown = await created.text();
    expect(shown).toMatch(/Shown once/);
    const [server, client] = keysIn(shown);
    expect(server).toMatch(/^sk_live_/);
    expect(client).toMatch(/^ck_live_/);
    expect((await call("/v1/admin/keys", { headers: { "x-api-key": server } })).status).toBe(200);
    // The same form again (a double click, a reload of the POST): nothing new, no key shown.
    const again = await form(`/console/orgs/${o.orgId}/keys/create`, { form_id: formId }, cookie);
    expect(again.status).toBe(200);
    expect(keysIn(await again.text())).toEqual([]);
    expect(await countRows("api_keys", "org_id = ?", o.orgId)).toBe(2);
    // A second claim with a fresh form: refused, the org has live keys.
    expect((await form(`/console/orgs/${o.orgId}/keys/create`, { form_id: uniq("form-id-x") }, cookie)).status).toBe(409);
    expect(await countRows("audit_log", "event_type = 'KEYS_CREATED' AND actor = ?", `user:${o.userId}`)).toBe(1);
    expect(await dumpDatabase()).not.toMatch(PLAINTEXT_KEY_PATTERN);
  });

  it("rotate with a window: both keys in the inventory; revoke with a confirmation; the audit log shows the console actions", async () => {
    const o = await ownedOrg();
    const cookie = await signIn(o.email);
    const claim = await form(
      `/console/orgs/${o.orgId}/keys/create`,
      { form_id: formIdIn(await (await get(`/console/orgs/${o.orgId}/keys`, cookie)).text())! },
      cookie,
    );
    const [server] = keysIn(await claim.text());
    const page = await (await get(`/console/orgs/${o.orgId}/keys`, cookie)).text();
    const rotated = await form(`/console/orgs/${o.orgId}/keys/rotate`, { form_id: `${formIdIn(page)!}-sk_live`, key_type: "sk_live", window: "3600" }, cookie);
    expect(rotated.status).toBe(200);
    const [newServer] = keysIn(await rotated.text());
    expect(newServer).toMatch(/^sk_live_/);
    const inventory = await (await get(`/console/orgs/${o.orgId}/keys`, cookie)).text();
    expect(inventory.match(/class="status expiring"/g)).toHaveLength(1);
    expect(inventory.match(/class="status active"/g)).toHaveLength(2);
    expect((await call("/v1/admin/keys", { headers: { "x-api-key": server } })).status).toBe(200); // in its window
    expect((await call("/v1/admin/keys", { headers: { "x-api-key": newServer } })).status).toBe(200);
    // A window that is not offered is refused.
    expect((await form(`/console/orgs/${o.orgId}/keys/rotate`, { form_id: uniq("form-id-w"), key_type: "sk_live", window: "5" }, cookie)).status).toBe(400);
    // Revoke: a confirmation page, then the POST.
    const confirm = await get(`/console/orgs/${o.orgId}/keys/revoke?key_type=ck_live`, cookie);
    const confirmHtml = await confirm.text();
    expect(confirmHtml).toMatch(/Revoke the client key\?/);
    const revoked = await form(`/console/orgs/${o.orgId}/keys/revoke`, { form_id: formIdIn(confirmHtml)!, key_type: "ck_live" }, cookie);
    expect(revoked.status).toBe(200);
    expect(await revoked.text()).toMatch(/Revoked: the client key no longer works/);
    expect(await countRows("api_keys", "org_id = ? AND key_type = 'ck_live' AND revoked_at IS NULL", o.orgId)).toBe(0);
    const audit = await (await get(`/console/orgs/${o.orgId}/audit`, cookie)).text();
    for (const event of ["KEYS_CREATED", "KEY_ROTATED", "KEY_REVOKED"]) expect(audit).toContain(event);
    expect(audit).toContain(`user:${o.userId}`);
    const filtered = await (await get(`/console/orgs/${o.orgId}/audit?event_type=KEY_ROTATED`, cookie)).text();
    expect(filtered).not.toContain(">KEYS_CREATED</td>");
  });

  it("a suspended org shows why and offers no key actions; its POSTs change nothing", async () => {
    const o = await ownedOrg();
    const cookie = await signIn(o.email);
    expect((await act("billing-suspend", o.orgId)).status).toBe(200);
    const html = await (await get(`/console/orgs/${o.orgId}/keys`, cookie)).text();
    expect(html).toMatch(/suspended for billing/);
    expect(html).not.toContain(">Create keys</button>");
    expect(html).not.toContain(">Rotate</button>");
    expect((await form(`/console/orgs/${o.orgId}/keys/create`, { form_id: uniq("form-id-s") }, cookie)).status).toBe(409);
    expect((await form(`/console/orgs/${o.orgId}/keys/rotate`, { form_id: uniq("form-id-r"), key_type: "sk_live", window: "0" }, cookie)).status).toBe(409);
    expect(await countRows("api_keys", "org_id = ?", o.orgId)).toBe(0);
  });

  it("another owner's org is not found; an owner of several orgs picks one", async () => {
    const a = await ownedOrg();
    const b = await ownedOrg();
    const cookie = await signIn(a.email);
    expect((await get(`/console/orgs/${b.orgId}`, cookie)).status).toBe(404);
    expect((await form(`/console/orgs/${b.orgId}/keys/create`, { form_id: uniq("form-id-o") }, cookie)).status).toBe(404);
    await billing.createOrg(uniq("evt"), { ...orgBody(), owner_email: a.email });
    const home = await get("/console", cookie);
    expect(home.status).toBe(200);
    expect((await home.text()).match(/href="\/console\/orgs\//g)).toHaveLength(2);
  });
});

describe("sessions end", () => {
  it("signed out, the cookie is dead everywhere (another browser with a copy of it too)", async () => {
    const o = await ownedOrg();
    const cookie = await signIn(o.email);
    expect((await form("/console/sign-out", {}, cookie)).status).toBe(303);
    const reuse = await get(`/console/orgs/${o.orgId}`, cookie);
    expect(reuse.status).toBe(303);
    expect(reuse.headers.get("location")).toBe("/console/sign-in");
  });

  it("idle for 30 minutes or older than 12 hours: back to sign-in", async () => {
    const o = await ownedOrg();
    const idle = await signIn(o.email);
    await env.DB.prepare("UPDATE console_sessions SET last_seen_at = ? WHERE user_id = ?")
      .bind(new Date(Date.now() - 31 * 60_000).toISOString(), o.userId)
      .run();
    expect((await get(`/console/orgs/${o.orgId}`, idle)).status).toBe(303);
    const old = await signIn(o.email);
    await env.DB.prepare("UPDATE console_sessions SET expires_at = ? WHERE user_id = ? AND ended_at IS NULL")
      .bind(new Date(Date.now() - 1000).toISOString(), o.userId)
      .run();
    expect((await get(`/console/orgs/${o.orgId}`, old)).status).toBe(303);
  });

  it("forgot your password: the same answer for any address; the reset link works once and ends every session", async () => {
    const { sent } = spyEmail();
    const o = await ownedOrg();
    const cookie = await signIn(o.email);
    const known = await form("/console/forgot", { email: o.email });
    const unknown = await form("/console/forgot", { email: `${uniq("ghost")}@example.com` });
    expect([known.status, unknown.status]).toEqual([200, 200]);
    expect(await known.text()).toBe(await unknown.text());
    const row = await env.DB.prepare("SELECT id FROM outbox WHERE kind = 'password_reset' AND json_extract(payload, '$.user_id') = ?")
      .bind(o.userId)
      .first<{ id: string }>();
    expect(row).not.toBeNull();
    expect(await countRows("outbox", "kind = 'password_reset'")).toBe(1);
    await deliver(row!.id);
    const mail = sent.find((m) => m.to === o.email)!;
    expect(subjectOf(mail)).toBe("Reset your password");
    expect(plainText(mail)).not.toMatch(/(ck_live_|sk_live_|kvqp_)/);
    const token = /set-password#token=([A-Za-z0-9_-]{43})/.exec(plainText(mail))![1];
    const reset = await call("/api/v1/auth/set-password", { json: { token, password: "a brand new passphrase" } });
    expect(reset.status).toBe(200);
    expect((await get(`/console/orgs/${o.orgId}`, cookie)).status).toBe(303); // the old session ended
    expect((await form("/console/sign-in", { email: o.email, password: PASSWORD })).status).toBe(401);
    expect((await form("/console/sign-in", { email: o.email, password: "a brand new passphrase" })).status).toBe(303);
    // A second request within 10 minutes sends nothing more (limited like a resent invite), answered the same.
    expect((await form("/console/forgot", { email: o.email })).status).toBe(200);
    expect(await countRows("outbox", "kind = 'password_reset'")).toBe(1);
  });
});
