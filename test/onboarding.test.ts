import { createExecutionContext, createMessageBatch, createScheduledController, env, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../src/index";
import { MAX_SEND_ATTEMPTS } from "../src/features/onboarding/outbox";
import { deliver, linkIn, plainText, spyEmail, until } from "./email";
import { call, countingDb, countRows, createPartner, dumpDatabase, PARTNER_ORGS, PLAINTEXT_KEY_PATTERN, provision, provisionBody, uniq } from "./helpers";

afterEach(() => vi.restoreAllMocks());

const outboxOf = (orgId: string) =>
  env.DB.prepare("SELECT * FROM outbox WHERE json_extract(payload, '$.org_id') = ? ORDER BY created_at DESC").bind(orgId).first<any>();
const orgIdOf = async (identifier: string) =>
  (await env.DB.prepare("SELECT org_id FROM organizations WHERE identifier = ?").bind(identifier).first<{ org_id: string }>())!.org_id;

/** An org whose outbox row exists but was never enqueued (as after a crash between commit and enqueue). */
async function orphanedOutboxRow(updatedAgoMs = 0) {
  const id = `0${uniq("ob").replace(/[^a-z0-9]/g, "")}`.toUpperCase().slice(0, 26);
  const email = `${uniq("orphan")}@example.com`;
  const orgId = `org_${uniq("orphan").replace(/[^a-z0-9_]/g, "_")}`;
  const at = new Date(Date.now() - updatedAgoMs).toISOString();
  await env.DB.batch([
    env.DB.prepare("INSERT INTO users (email, created_at, updated_at) VALUES (?, ?, ?)").bind(email, at, at),
    env.DB.prepare(
      "INSERT INTO organizations (org_id, identifier, slug, name, domain, tier, owner_user_id, created_at, updated_at) VALUES (?, ?, ?, 'Orphan Co', 'general', 'starter', (SELECT id FROM users WHERE email = ?), ?, ?)",
    ).bind(orgId, crypto.randomUUID(), orgId, email, at, at),
    env.DB.prepare(
      "INSERT INTO outbox (id, kind, payload, created_at, updated_at) VALUES (?, 'welcome_email', json_object('user_id', (SELECT id FROM users WHERE email = ?), 'org_id', ?), ?, ?)",
    ).bind(id, email, orgId, at, at),
  ]);
  return { id, email, orgId };
}

/** A partner-provisioned org whose welcome email has been sent, with the link's token. */
async function ownerWithLink() {
  const { sent } = spyEmail();
  const partner = await createPartner();
  const body = provisionBody();
  const org = await (await provision(partner.partner_key, body)).json<any>();
  const mail = await until(async () => sent.find((m) => m.to === body.email));
  return { partner, org, token: linkIn(mail)!, sent, email: body.email };
}

describe("delivery: outbox row → queue → consumer → send_email", () => {
  it("provisioning's email is sent once, to the owner, with the link and its expiry, and no API key", async () => {
    const { sent } = spyEmail();
    const partner = await createPartner();
    const body = provisionBody({ businessName: "Mail Test Co" });
    const org = await (await provision(partner.partner_key, body)).json<any>();
    const orgId = await orgIdOf(org.organizationIdentifier);
    const row = await until(async () => ((await outboxOf(orgId))?.status === "sent" ? outboxOf(orgId) : null));
    expect(row).toMatchObject({ status: "sent", attempts: 1 });
    expect(sent).toHaveLength(1);
    expect(sent[0].to).toBe(body.email);
    expect(sent[0].from).toBe("welcome@kelviq.example.com");
    expect(sent[0]).toMatchObject({ from: "welcome@kelviq.example.com", fromName: expect.stringMatching(/\S/) });
    const text = plainText(sent[0]);
    expect(text).toContain("Mail Test Co");
    expect(text).toMatch(/http:\/\/localhost:8787\/set-password#token=[A-Za-z0-9_-]{43}/);
    expect(text).toMatch(/expires on .* \(72 hours/);
    expect(sent[0].html).toMatch(/^<!doctype html>/);
    expect(JSON.stringify(sent[0])).not.toMatch(PLAINTEXT_KEY_PATTERN);
    expect(JSON.stringify(sent[0])).not.toContain(org.clientKey);
    const token = linkIn(sent[0])!;
    expect(await dumpDatabase()).not.toContain(token);
    expect(await countRows("audit_log", "org_id = ? AND event_type = 'WELCOME_EMAIL_SENT'", orgId)).toBe(1);
    expect(JSON.parse(row.payload)).toEqual({ user_id: org.userId, org_id: orgId });
  });

  it("a redelivered message never sends twice", async () => {
    const { sent } = spyEmail();
    const row = await orphanedOutboxRow();
    expect((await deliver(row.id)).explicitAcks).toHaveLength(1);
    const again = await deliver(row.id);
    expect(again.explicitAcks).toHaveLength(1);
    expect(sent.filter((m) => m.to === row.email)).toHaveLength(1);
  });

  it("a failed send is retried with backoff; after the last attempt the row is failed and audited", async () => {
    spyEmail(true);
    const row = await orphanedOutboxRow();
    const delays: (number | undefined)[] = [];
    for (let attempt = 1; attempt < MAX_SEND_ATTEMPTS; attempt++) {
      const result = await deliver(row.id, attempt);
      expect(result.retryMessages).toHaveLength(1);
      delays.push(...result.retryDelays);
      const r = await env.DB.prepare("SELECT status, attempts FROM outbox WHERE id = ?").bind(row.id).first<any>();
      expect(r).toEqual({ status: "pending", attempts: attempt });
    }
    expect(delays).toEqual([30, 60, 120, 240]);
    const last = await deliver(row.id, MAX_SEND_ATTEMPTS);
    expect(last.explicitAcks).toHaveLength(1);
    expect(await env.DB.prepare("SELECT status, attempts FROM outbox WHERE id = ?").bind(row.id).first<any>()).toEqual({
      status: "failed",
      attempts: MAX_SEND_ATTEMPTS,
    });
    const audit = await env.DB.prepare("SELECT * FROM audit_log WHERE org_id = ? AND event_type = 'WELCOME_EMAIL_FAILED'").bind(row.orgId).first<any>();
    expect(audit.detail).toContain(`attempts=${MAX_SEND_ATTEMPTS}`);
    expect((await deliver(row.id)).explicitAcks).toHaveLength(1); // a failed row is never sent again
  });
});

describe("consumer cost", () => {
  it("a batch of messages costs two D1 round trips, whatever its size", async () => {
    const { sent } = spyEmail();
    const rows = await Promise.all(Array.from({ length: 6 }, () => orphanedOutboxRow()));
    const batch = createMessageBatch(
      "org-key-authority-outbox",
      rows.map((r) => ({ id: uniq("m"), timestamp: new Date(), attempts: 1, body: { outbox_id: r.id } })),
    );
    const { db, counter } = countingDb(env.DB);
    const ctx = createExecutionContext();
    await worker.queue(batch, { ...env, DB: db }, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toHaveLength(6);
    expect(counter.roundTrips).toBe(2);
    expect(sent.filter((m) => rows.some((r) => r.email === m.to))).toHaveLength(6);
  });
});

describe("cron", () => {
  it("re-enqueues a row never enqueued (crash between commit and enqueue) and one stuck in sending; sends each once", async () => {
    const { sent } = spyEmail();
    const orphan = await orphanedOutboxRow(5 * 60_000);
    const stuck = await orphanedOutboxRow(15 * 60_000);
    await env.DB.prepare("UPDATE outbox SET status = 'sending', attempts = 1 WHERE id = ?").bind(stuck.id).run();
    const fresh = await orphanedOutboxRow(0); // too recent: its message may still be on the way
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    for (const r of [orphan, stuck]) {
      await until(async () => (await env.DB.prepare("SELECT status FROM outbox WHERE id = ?").bind(r.id).first<any>())?.status === "sent");
      expect(sent.filter((m) => m.to === r.email)).toHaveLength(1);
    }
    expect((await env.DB.prepare("SELECT status FROM outbox WHERE id = ?").bind(fresh.id).first<any>()).status).toBe("pending");
  });

  it("deletes expired idempotency rows, old outbox rows, and audit rows past 90 days; keeps the rest", async () => {
    const old = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
    const key = uniq("retention");
    await env.DB.batch([
      env.DB.prepare("INSERT INTO idempotency_keys VALUES ('test', ?, 'f', 200, '{}', ?, ?)").bind(`${key}-expired`, old(2), old(1)),
      env.DB.prepare("INSERT INTO idempotency_keys VALUES ('test', ?, 'f', 200, '{}', ?, ?)").bind(
        `${key}-live`,
        old(0),
        new Date(Date.now() + 3600_000).toISOString(),
      ),
      env.DB.prepare("INSERT INTO audit_log (event_type, actor, request_id, detail, created_at) VALUES ('ORG_CREATED', 'test', ?, 'old', ?)").bind(
        `${key}-a91`,
        old(91),
      ),
      env.DB.prepare("INSERT INTO audit_log (event_type, actor, request_id, detail, created_at) VALUES ('ORG_CREATED', 'test', ?, 'recent', ?)").bind(
        `${key}-a89`,
        old(89),
      ),
      env.DB.prepare("INSERT INTO outbox (id, kind, payload, status, created_at, updated_at) VALUES (?, 'welcome_email', '{}', 'sent', ?, ?)").bind(
        `${key}-o31`,
        old(31),
        old(31),
      ),
      env.DB.prepare("INSERT INTO outbox (id, kind, payload, status, created_at, updated_at) VALUES (?, 'welcome_email', '{}', 'sent', ?, ?)").bind(
        `${key}-o1`,
        old(1),
        old(1),
      ),
    ]);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController(), env, ctx);
    await waitOnExecutionContext(ctx);
    expect(await countRows("idempotency_keys", "idempotency_key LIKE ?", `${key}%`)).toBe(1);
    expect(await countRows("audit_log", "request_id LIKE ?", `${key}%`)).toBe(1);
    expect(await countRows("outbox", "id LIKE ?", `${key}%`)).toBe(1);
  });
});

describe("set-password", () => {
  const setPassword = (json: unknown) => call("/api/v1/auth/set-password", { json });

  it("sets the password once (PBKDF2-SHA256, 100,000 iterations, per-user salt) and consumes the link", async () => {
    const { org, token } = await ownerWithLink();
    expect(await (await call("/api/v1/auth/set-password/check", { json: { token } })).json<any>()).toMatchObject({ valid: true });
    const password = "correct horse battery staple";
    const res = await setPassword({ token, password });
    expect(res.status).toBe(200);
    expect(await res.json<any>()).toMatchObject({ password_set: true, request_id: expect.stringMatching(/^req_/) });
    const user = await env.DB.prepare("SELECT password_hash, password_set_at FROM users WHERE id = ?").bind(org.userId).first<any>();
    const [scheme, iterations, salt, hash] = user.password_hash.split("$");
    expect([scheme, iterations]).toEqual(["pbkdf2-sha256", "100000"]);
    const saltBytes = Uint8Array.from(atob(salt.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
    const bits = new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: saltBytes, iterations: 100_000 }, key, 256));
    expect(
      btoa(String.fromCharCode(...bits))
        .replace(/\+/g, "-")
        .replace(/\//g, "_")
        .replace(/=+$/, ""),
    ).toBe(hash);
    expect(await dumpDatabase()).not.toContain(password);
    expect(await countRows("audit_log", "event_type = 'PASSWORD_SET' AND actor = ?", `user:${org.userId}`)).toBe(1);

    const reuse = await setPassword({ token, password: "another long password" });
    expect(reuse.status).toBe(410);
    expect((await reuse.json<any>()).error).toBe("TOKEN_USED");
    expect((await call("/api/v1/auth/set-password/check", { json: { token } })).status).toBe(410);
  });

  it("410 TOKEN_EXPIRED after 72 hours; 400 TOKEN_INVALID for a wrong token", async () => {
    const { org, token } = await ownerWithLink();
    await env.DB.prepare("UPDATE password_tokens SET expires_at = ? WHERE user_id = ?")
      .bind(new Date(Date.now() - 1000).toISOString(), org.userId)
      .run();
    const expired = await setPassword({ token, password: "correct horse battery staple" });
    expect(expired.status).toBe(410);
    expect((await expired.json<any>()).error).toBe("TOKEN_EXPIRED");
    const wrong = await setPassword({ token: "A".repeat(43), password: "correct horse battery staple" });
    expect(wrong.status).toBe(400);
    expect((await wrong.json<any>()).error).toBe("TOKEN_INVALID");
    const row = await env.DB.prepare("SELECT expires_at, created_at FROM password_tokens WHERE user_id = ?").bind(org.userId).first<any>();
    expect(row).toBeTruthy();
  });

  it("links expire 72 hours after they are sent", async () => {
    const { org } = await ownerWithLink();
    const row = await env.DB.prepare("SELECT expires_at, created_at FROM password_tokens WHERE user_id = ?").bind(org.userId).first<any>();
    expect(Date.parse(row.expires_at) - Date.parse(row.created_at)).toBe(72 * 3600 * 1000);
  });

  it("400 VALIDATION_FAILED for a password under 12 or over 128 characters (counted as characters, not bytes)", async () => {
    const { token } = await ownerWithLink();
    for (const password of ["short", "x".repeat(11), "y".repeat(129), "🔑".repeat(129)]) {
      const res = await setPassword({ token, password });
      expect(res.status).toBe(400);
      const json = await res.json<any>();
      expect(json.error).toBe("VALIDATION_FAILED");
      expect(json.details[0].field).toBe("password");
    }
    for (const json of [{ token }, { password: "long enough password" }, { token: "bad", password: "long enough password" }]) {
      expect((await setPassword(json)).status).toBe(400);
    }
    expect((await setPassword({ token, password: "🔑".repeat(128) })).status).toBe(200);
  });

  it("two concurrent uses of one link: exactly one sets the password", async () => {
    const { token } = await ownerWithLink();
    const res = await Promise.all([setPassword({ token, password: "first password here" }), setPassword({ token, password: "second password here" })]);
    expect(res.map((r) => r.status).sort()).toEqual([200, 410]);
  });
});

describe("POST …/{identifier}/resend-invite/", () => {
  it("issues a fresh link and the old one dies at once; 409 once a password is set", async () => {
    const { sent } = spyEmail();
    const partner = await createPartner();
    const body = provisionBody();
    const org = await (await provision(partner.partner_key, body)).json<any>();
    const first = linkIn(await until(async () => sent.find((m) => m.to === body.email)))!;
    const res = await call(`${PARTNER_ORGS}/${org.organizationIdentifier}/resend-invite/`, {
      method: "POST",
      headers: { "x-kelviq-partner-key": partner.partner_key },
    });
    expect(res.status).toBe(202);
    expect(await res.json<any>()).toEqual({ organizationIdentifier: org.organizationIdentifier, userId: org.userId, inviteQueued: true });
    expect((await call("/api/v1/auth/set-password/check", { json: { token: first } })).status).toBe(410);
    const second = linkIn(await until(async () => sent.filter((m) => m.to === body.email)[1]))!;
    expect(second).not.toBe(first);
    expect((await call("/api/v1/auth/set-password", { json: { token: second, password: "a fine long password" } })).status).toBe(200);
    const again = await call(`${PARTNER_ORGS}/${org.organizationIdentifier}/resend-invite/`, {
      method: "POST",
      headers: { "x-kelviq-partner-key": partner.partner_key },
    });
    expect(again.status).toBe(409);
    expect((await again.json<any>()).error).toBe("PASSWORD_ALREADY_SET");
    const other = await createPartner();
    const theirs = await call(`${PARTNER_ORGS}/${org.organizationIdentifier}/resend-invite/`, {
      method: "POST",
      headers: { "x-kelviq-partner-key": other.partner_key },
    });
    expect(theirs.status).toBe(404);
  });
});

describe("GET /set-password", () => {
  it("a self-contained page with a strict CSP and its own script and styles", async () => {
    const res = await call("/set-password");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).toContain('autocomplete="new-password"');
    for (const asset of ["/set-password/app.js", "/set-password/app.css"]) {
      const a = await call(asset);
      expect(a.status).toBe(200);
      expect(await a.text()).not.toMatch(/https?:\/\//);
    }
  });
});

describe("trust: the smaller holes", () => {
  const resend = (partnerKey: string, identifier: string) =>
    call(`${PARTNER_ORGS}/${identifier}/resend-invite/`, { method: "POST", headers: { "x-kelviq-partner-key": partnerKey } });

  it("resend-invite: at most one per user per 10 minutes and 5 per day, 429 with Retry-After, nothing queued", async () => {
    spyEmail();
    const partner = await createPartner();
    const org = await (await provision(partner.partner_key, provisionBody())).json<any>();
    const orgId = await orgIdOf(org.organizationIdentifier);
    const outboxRows = () => countRows("outbox", "json_extract(payload, '$.org_id') = ?", orgId);
    expect((await resend(partner.partner_key, org.organizationIdentifier)).status).toBe(202);
    const before = await outboxRows();
    const soon = await resend(partner.partner_key, org.organizationIdentifier);
    expect(soon.status).toBe(429);
    expect((await soon.json<any>()).error).toBe("RATE_LIMITED");
    const retryAfter = Number(soon.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(590);
    expect(retryAfter).toBeLessThanOrEqual(600);
    expect(await outboxRows()).toBe(before);

    // Four more, each 11 minutes apart, are allowed; the sixth of the day is refused until the first is 24 h old.
    const start = Date.now();
    const spy = vi.spyOn(Date, "now");
    try {
      for (let i = 1; i <= 4; i++) {
        spy.mockReturnValue(start + i * 11 * 60_000);
        expect((await resend(partner.partner_key, org.organizationIdentifier)).status, `resend ${i + 1}`).toBe(202);
      }
      spy.mockReturnValue(start + 5 * 11 * 60_000);
      const sixth = await resend(partner.partner_key, org.organizationIdentifier);
      expect(sixth.status).toBe(429);
      const wait = Number(sixth.headers.get("retry-after"));
      expect(wait).toBeGreaterThan(24 * 3600 - 5 * 11 * 60 - 5);
      expect(wait).toBeLessThanOrEqual(24 * 3600 - 5 * 11 * 60 + 1);
      spy.mockReturnValue(start + 24 * 3600_000 + 1000);
      expect((await resend(partner.partner_key, org.organizationIdentifier)).status).toBe(202);
    } finally {
      spy.mockRestore();
    }
  });

  it("businessName refuses bidi controls and other invisible format characters (422); the welcome subject carries no partner text", async () => {
    const { sent } = spyEmail();
    const partner = await createPartner();
    for (const name of ["Acme\u202Egnp.exe", "Pay\u200Bpal", "\u2066Acme\u2069", "Ac\uFEFFme", "Acme\u00ADCorp"]) {
      const res = await provision(partner.partner_key, provisionBody({ businessName: name }));
      expect(res.status, JSON.stringify(name)).toBe(422);
      const json = await res.json<any>();
      expect(json).toMatchObject({ error: "VALIDATION_FAILED" });
      expect(json.details[0]).toMatchObject({ location: "body", field: "businessName" });
    }
    expect(await countRows("organizations", "partner_id = ?", partner.partner_id)).toBe(0);
    // Letters that need a joiner still work (Persian with ZWNJ), and the subject is ours alone.
    const body = provisionBody({ businessName: "Evil Corp <script> — Urgent: reset now" });
    expect((await provision(partner.partner_key, body)).status).toBe(201);
    expect((await provision(partner.partner_key, provisionBody({ businessName: "می\u200Cخواهم" }))).status).toBe(201);
    const mail = await until(async () => sent.find((m) => m.to === body.email));
    expect(mail.subject).toBe("Set your password");
    // The operator API refuses them too (422, as every operator body error).
    const op = await call("/v1/admin/org/create", {
      headers: { "x-api-key": env.MASTER_ADMIN_KEY_ORG_CREATE, "idempotency-key": uniq() },
      json: {
        org_id: `org_${uniq().replace(/[^a-z0-9_]/g, "")}`,
        name: "Acme\u202E",
        domain: "general",
        tier: "starter",
        allowed_origins: "https://a.example.com",
      },
    });
    expect(op.status).toBe(422);
  });

  it("passwords are NFKC-normalized before hashing: the same password typed on two devices matches", async () => {
    const { org, token } = await ownerWithLink();
    const typed = "cafe\u0301 ｆｕｌｌｗｉｄｔｈ pass"; // decomposed é and full-width letters
    expect((await call("/api/v1/auth/set-password", { json: { token, password: typed } })).status).toBe(200);
    const user = await env.DB.prepare("SELECT password_hash FROM users WHERE id = ?").bind(org.userId).first<any>();
    const [, , salt, hash] = user.password_hash.split("$");
    const saltBytes = Uint8Array.from(atob(salt.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
    const derive = async (p: string) => {
      const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(p), "PBKDF2", false, ["deriveBits"]);
      const bits = new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: saltBytes, iterations: 100_000 }, key, 256));
      return btoa(String.fromCharCode(...bits))
        .replace(/\+/g, "-")
        .replace(/\//g, "_")
        .replace(/=+$/, "");
    };
    expect(await derive("café fullwidth pass")).toBe(hash); // composed é, ASCII letters: the other device
  });
});

describe("PUBLIC_BASE_URL", () => {
  it("unset: no email goes out with a made-up link; the message is retried later and the row stays pending", async () => {
    const { sent } = spyEmail();
    const { id } = await orphanedOutboxRow();
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: string) => void errors.push(line));
    const result = await deliver(id, 1, { PUBLIC_BASE_URL: "" });
    expect(result.retryBatch).toMatchObject({ retry: true });
    expect(sent).toHaveLength(0);
    expect((await env.DB.prepare("SELECT status FROM outbox WHERE id = ?").bind(id).first<any>()).status).toBe("pending");
    expect(JSON.parse(errors[0])).toMatchObject({ level: "error", event: "outbox_paused", request_id: expect.stringMatching(/^req_/) });
  });
});
