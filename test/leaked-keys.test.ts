// Leaked keys come home: GitHub secret scanning reports (ECDSA P-256 signatures from a test key pair, served by the
// local stand-in of GitHub's key list) and revocation by possession.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { mintKey } from "../src/lib/keys/keys";
import { verifyKey } from "../src/verify/verify-key";
import { hmacHex } from "./crypto";
import { deliver, plainText, spyEmail, subjectOf } from "./email";
import {
  call,
  callWithEnv,
  countingDb,
  countRows,
  createPartner,
  dumpDatabase,
  makeOrg,
  PARTNER_ORGS,
  PLAINTEXT_KEY_PATTERN,
  provision,
  provisionBody,
} from "./helpers";

afterEach(() => vi.restoreAllMocks());

interface Signer {
  id: string;
  privateKey: CryptoKey;
}
let current: Signer;
let retired: Signer;
const unknown = { id: "f".repeat(64), privateKey: undefined as unknown as CryptoKey };

const b64 = (bytes: ArrayBuffer | Uint8Array) => btoa(String.fromCharCode(...new Uint8Array(bytes)));

/** WebCrypto signs as raw r‖s; GitHub sends DER: SEQUENCE { INTEGER r, INTEGER s }. */
function rawToDer(raw: Uint8Array) {
  const int = (b: Uint8Array) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    return v[0] & 0x80 ? [0x02, v.length + 1, 0, ...v] : [0x02, v.length, ...v];
  };
  const body = [...int(raw.subarray(0, 32)), ...int(raw.subarray(32))];
  return new Uint8Array([0x30, body.length, ...body]);
}

async function newSigner(id: string) {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const spki = (await crypto.subtle.exportKey("spki", pair.publicKey)) as ArrayBuffer;
  return { signer: { id, privateKey: pair.privateKey }, pem: `-----BEGIN PUBLIC KEY-----\n${b64(spki).replace(/.{64}/g, "$&\n")}\n-----END PUBLIC KEY-----\n` };
}

beforeAll(async () => {
  const a = await newSigner("a".repeat(64));
  const b = await newSigner("b".repeat(64));
  current = a.signer;
  retired = b.signer;
  await fetch(env.GITHUB_SECRET_SCANNING_KEYS_URL, {
    method: "PUT",
    body: JSON.stringify({
      public_keys: [
        { key_identifier: a.signer.id, key: a.pem, is_current: true },
        { key_identifier: b.signer.id, key: b.pem, is_current: false },
      ],
    }),
  });
});

const GITHUB = "/v1/secret-scanning/github";
async function signedHeaders(body: string, signer: Signer = current) {
  const key = signer.privateKey ?? current.privateKey;
  const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, new TextEncoder().encode(body)));
  return { "content-type": "application/json", "github-public-key-identifier": signer.id, "github-public-key-signature": b64(rawToDer(raw)) };
}
const matches = (tokens: string[]) =>
  JSON.stringify(tokens.map((token) => ({ token, type: "kelviq_key", url: "https://github.com/octocat/leak/blob/abc/.env", source: "content" })));
async function report(tokens: string[], o: { signer?: Signer; tamper?: (b: string) => string; env?: Record<string, unknown> } = {}) {
  const body = matches(tokens);
  const headers = await signedHeaders(body, o.signer);
  const init = { method: "POST", headers, body: o.tamper ? o.tamper(body) : body };
  return o.env ? callWithEnv(o.env, GITHUB, init) : call(GITHUB, init);
}
async function verify(key: string) {
  const ctx = createExecutionContext();
  const result = await verifyKey(env as never, ctx, key);
  await waitOnExecutionContext(ctx);
  return result;
}
const labelsOf = async (res: Response) => ((await res.json()) as { label: string }[]).map((l) => l.label);

describe("GitHub secret scanning", () => {
  it("a signed report: secret keys revoked at once (audited, owner told without the key), a client key audited, noise false", async () => {
    const { sent } = spyEmail();
    const partner = await createPartner();
    const provisioned = await (await provision(partner.partner_key, provisionBody())).json<any>();
    const other = await createPartner();
    const made = mintKey("sk_live").plaintext; // well-formed, never issued
    const broken = `${provisioned.serverKey.slice(0, -1)}${provisioned.serverKey.endsWith("A") ? "B" : "A"}`;
    const res = await report([provisioned.serverKey, other.partner_key, provisioned.clientKey, made, broken, "not even a key"]);
    expect(res.status).toBe(200);
    const labels = (await res.json()) as { token_hash: string; token_type: string; label: string }[];
    expect(labels.map((l) => l.label)).toEqual(["true_positive", "true_positive", "true_positive", "false_positive", "false_positive", "false_positive"]);
    expect(labels[0]).toMatchObject({ token_type: "kelviq_key", token_hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(JSON.stringify(labels)).not.toMatch(PLAINTEXT_KEY_PATTERN); // hashes, never the tokens
    // The server key and the partner key are dead now; the client key (publishable) still verifies.
    expect((await call("/v1/admin/keys", { headers: { "x-api-key": provisioned.serverKey } })).status).toBe(401);
    expect((await call(`${PARTNER_ORGS}/`, { headers: { "x-kelviq-partner-key": other.partner_key } })).status).toBe(401);
    expect(await verify(provisioned.clientKey)).toMatchObject({ valid: true });
    const exposed = await env.DB.prepare("SELECT key_prefix, detail FROM audit_log WHERE event_type = 'KEY_EXPOSED' AND key_prefix = ?")
      .bind(`sk_live_${provisioned.serverKeyPrefix}`)
      .first<any>();
    expect(exposed.detail).toBe("source=github url=https://github.com/octocat/leak/blob/abc/.env");
    expect(await countRows("audit_log", "event_type = 'CLIENT_KEY_REPORTED' AND key_prefix = ?", `ck_live_${provisioned.clientKeyPrefix}`)).toBe(1);
    // The owner's email names the key's prefix and where it was found, never the key; it says what to do.
    const row = await env.DB.prepare("SELECT id FROM outbox WHERE kind = 'key_exposed'").first<{ id: string }>();
    await deliver(row!.id);
    const mail = sent.at(-1)!;
    expect(subjectOf(mail)).toBe("A key of yours was found in public and revoked");
    const text = plainText(mail);
    expect(text).toContain(`sk_live_${provisioned.serverKeyPrefix}`);
    expect(text).toMatch(/Rotate it in the console/);
    expect(text).not.toMatch(PLAINTEXT_KEY_PATTERN);
    expect(await dumpDatabase()).not.toMatch(PLAINTEXT_KEY_PATTERN);
  });

  it("the same report again changes nothing more; a key in its overlap window is revoked too", async () => {
    const org = await makeOrg();
    const rotated = await (
      await call("/v1/admin/key/rotate", { method: "POST", headers: { "x-api-key": org.server_api_key }, json: { expire_previous_in_seconds: 3600 } })
    ).json<any>();
    const first = await report([org.server_api_key, rotated.new_api_key]);
    expect(await labelsOf(first)).toEqual(["true_positive", "true_positive"]);
    const audits = await countRows("audit_log", "event_type = 'KEY_EXPOSED' AND org_id = ?", org.org_id);
    expect(audits).toBe(2);
    expect(await labelsOf(await report([org.server_api_key, rotated.new_api_key]))).toEqual(["true_positive", "true_positive"]);
    expect(await countRows("audit_log", "event_type = 'KEY_EXPOSED' AND org_id = ?", org.org_id)).toBe(audits);
    expect(await countRows("api_keys", "org_id = ? AND key_type = 'sk_live' AND revoked_at IS NULL", org.org_id)).toBe(0);
  });

  it("a format-1 key is recognised and revoked too", async () => {
    const org = await makeOrg();
    const old = `sk_live_${"8".repeat(8)}${"ABCDEFGHJKMNPQRSTV"}`;
    await env.DB.prepare("INSERT INTO api_keys (key_hash, pepper_id, key_type, prefix, org_id, created_at) VALUES (?, 'p', 'sk_live', '88888888', ?, ?)")
      .bind(await hmacHex(env.API_KEY_PEPPER, old), org.org_id, new Date().toISOString())
      .run();
    expect(await labelsOf(await report([old]))).toEqual(["true_positive"]);
    expect((await call("/v1/admin/keys", { headers: { "x-api-key": old } })).status).toBe(401);
  });

  it("a tampered body, an unknown key id, a key id that is not current, no signature: 401, nothing revoked", async () => {
    const org = await makeOrg();
    const attempts = [
      await report([org.server_api_key], { tamper: (b) => b.replace("octocat", "mallory") }),
      await report([org.server_api_key], { signer: unknown }),
      await report([org.server_api_key], { signer: retired }),
      await call(GITHUB, { method: "POST", headers: { "content-type": "application/json" }, body: matches([org.server_api_key]) }),
      await call(GITHUB, {
        method: "POST",
        headers: { "content-type": "application/json", "github-public-key-identifier": current.id, "github-public-key-signature": "bm90IGRlcg==" },
        body: matches([org.server_api_key]),
      }),
    ];
    for (const res of attempts) {
      expect(res.status).toBe(401);
      expect(await res.json<any>()).toMatchObject({ error: "UNAUTHORIZED", message: "Missing or invalid credentials." });
    }
    expect((await call("/v1/admin/keys", { headers: { "x-api-key": org.server_api_key } })).status).toBe(200);
    expect(await countRows("audit_log", "event_type = 'AUTH_FAIL_GITHUB_SIGNATURE'")).toBeGreaterThanOrEqual(1);
  });

  it("GitHub's key list unreachable: 500, so GitHub sends the report again; nothing revoked", async () => {
    const org = await makeOrg();
    const res = await report([org.server_api_key], {
      env: { GITHUB_SECRET_SCANNING_KEYS_URL: env.GITHUB_SECRET_SCANNING_KEYS_URL.replace("/meta/", "/down/") },
    });
    expect(res.status).toBe(500);
    expect(await res.json<any>()).toMatchObject({ error: "INTERNAL" });
    expect((await call("/v1/admin/keys", { headers: { "x-api-key": org.server_api_key } })).status).toBe(200);
  });

  it("a batch of 100 tokens: one D1 round trip to look them up, one to revoke; failed checksums cost none", async () => {
    const orgs = await Promise.all(Array.from({ length: 10 }, () => makeOrg()));
    const tokens = [...orgs.map((o) => o.server_api_key), ...Array.from({ length: 90 }, () => mintKey("sk_live").plaintext)];
    const counted = countingDb(env.DB);
    const started = Date.now();
    const res = await report(tokens, { env: { DB: counted.db } });
    const ms = Date.now() - started;
    expect(res.status).toBe(200);
    const labels = await labelsOf(res);
    expect(labels.filter((l) => l === "true_positive")).toHaveLength(10);
    expect(labels).toHaveLength(100);
    expect(counted.counter.roundTrips).toBe(2);
    console.log(`secret scanning: 100 tokens in ${ms} ms, ${counted.counter.roundTrips} D1 round trips`);
    expect(ms).toBeLessThan(10_000); // GitHub's limit is 30 s
    const noise = countingDb(env.DB);
    const broken = tokens.slice(0, 20).map((t) => `${t.slice(0, -1)}${t.endsWith("A") ? "B" : "A"}`);
    expect(await labelsOf(await report(broken, { env: { DB: noise.db } }))).toEqual(Array(20).fill("false_positive"));
    expect(noise.counter.roundTrips).toBe(0);
  });
});

describe("revocation by possession: POST /v1/keys/revoke-leaked", () => {
  const revoke = (keys: string[], ip = `203.0.113.${Math.floor(Math.random() * 250)}`) =>
    call("/v1/keys/revoke-leaked", { headers: { "cf-connecting-ip": ip }, json: { keys } });
  const answer = async (res: Response) => {
    const { request_id, timestamp, ...rest } = await res.json<any>();
    expect(request_id).toMatch(/^req_/);
    expect(timestamp).toEqual(expect.any(String));
    return { status: res.status, ...rest };
  };

  it("live, dead, made-up and client keys: the same answer; only the live secret key is revoked, the client key audited", async () => {
    const org = await makeOrg();
    const dead = await makeOrg();
    await revoke([dead.server_api_key]);
    const answers = [
      await answer(await revoke([org.server_api_key])),
      await answer(await revoke([dead.server_api_key])),
      await answer(await revoke([mintKey("sk_live").plaintext])),
      await answer(await revoke([org.api_key])),
      await answer(await revoke(["garbage"])),
    ];
    for (const a of answers) expect(a).toEqual({ status: 202, received: 1 });
    expect((await call("/v1/admin/keys", { headers: { "x-api-key": org.server_api_key } })).status).toBe(401);
    expect(await verify(org.api_key)).toMatchObject({ valid: true });
    expect(await countRows("audit_log", "event_type = 'KEY_EXPOSED' AND org_id = ? AND detail = 'source=report'", org.org_id)).toBe(1);
    expect(await countRows("audit_log", "event_type = 'CLIENT_KEY_REPORTED' AND org_id = ?", org.org_id)).toBe(1);
  });

  it("at most 100 keys (422), limited per IP (429 with Retry-After)", async () => {
    const tooMany = await call("/v1/keys/revoke-leaked", { json: { keys: Array.from({ length: 101 }, () => "x") } });
    expect(tooMany.status).toBe(422);
    expect((await tooMany.json<any>()).error).toBe("VALIDATION_FAILED");
    const statuses = [];
    for (let i = 0; i < 11; i++) statuses.push((await revoke(["x"], "198.51.100.77")).status);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(202));
    const over = await revoke(["x"], "198.51.100.77");
    expect(over.status).toBe(429);
    expect(over.headers.get("retry-after")).toBe("60");
  });
});
