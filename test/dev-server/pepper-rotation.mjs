// Pepper rotation through `wrangler dev`, not the vitest bindings: with [secrets] declared, wrangler dev passes only
// the listed names from .dev.vars/.env to the Worker and drops the rest silently, which vitest cannot show. So:
//   1. pepper A: create an org, keep its server key;
//   2. pepper B alone: the key is unknown (401): the pepper really changed;
//   3. pepper B with API_KEY_PEPPER_PREVIOUS=A: the key works (200), and is re-hashed to B on that use;
//   4. pepper B alone again: the key still works (200): it was re-hashed.
// Also checks that wrangler dev gives requests a CF-Connecting-IP (so `npm start` keeps the per-IP limit).
// Runs its own wrangler dev on a free port with its own state directory and env file; never touches .dev.vars.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { wranglerEnv } from "../../scripts/local.mjs";
import { check, finish, freePort } from "./harness.mjs";

const dir = mkdtempSync(join(tmpdir(), "pepper-rotation-"));
const state = join(dir, "state");
const env = wranglerEnv;
const PEPPER_A = "pepper-a-0123456789abcdef0123456789";
const PEPPER_B = "pepper-b-fedcba9876543210fedcba9876";
const MASTER = "dev-server-test-master-key-org-create";

async function withServer(secrets, fn) {
  const file = join(dir, "secrets.env");
  writeFileSync(
    file,
    Object.entries({ MASTER_ADMIN_KEY_ORG_CREATE: MASTER, API_KEY_PEPPER_PREVIOUS: "", ...secrets })
      .map(([k, v]) => `${k}=${v}`)
      .join("\n") + "\n",
  );
  const port = await freePort();
  const child = spawn(
    "npx",
    ["wrangler", "dev", "--port", String(port), "--persist-to", state, "--env-file", file, "--var", `PUBLIC_BASE_URL:http://localhost:${port}`],
    { env, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const base = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${base}/`)).ok) break;
      } catch {}
      if (i > 120) throw new Error(`wrangler dev did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    return await fn(base);
  } finally {
    process.kill(-child.pid, "SIGTERM");
    await new Promise((r) => child.on("exit", r));
  }
}

const auditLog = (base, key) => fetch(`${base}/v1/admin/audit-log`, { headers: { "x-api-key": key } });

try {
  const migrate = spawnSync("npx", ["wrangler", "d1", "migrations", "apply", "DB", "--local", "--persist-to", state], { env, encoding: "utf8" });
  if (migrate.status !== 0) throw new Error(`migrations failed:\n${migrate.stdout}${migrate.stderr}`);

  const serverKey = await withServer({ API_KEY_PEPPER: PEPPER_A }, async (base) => {
    const res = await fetch(`${base}/v1/admin/org/create`, {
      method: "POST",
      headers: { "x-api-key": MASTER, "idempotency-key": "pepper-rotation", "content-type": "application/json" },
      body: JSON.stringify({ org_id: "org_pepper_rotation", name: "Pepper Co", domain: "general", tier: "starter", allowed_origins: "https://a.example.com" }),
    });
    check(res.status === 201, `org created under pepper A (${res.status})`);
    const key = (await res.json()).server_api_key;
    check((await auditLog(base, key)).status === 200, "its server key works under pepper A");
    await fetch(`${base}/v1/admin/org/usage`, { headers: { "x-api-key": "wrong" } }); // an audited failure, with its IP
    return key;
  });
  await withServer({ API_KEY_PEPPER: PEPPER_B }, async (base) => {
    check((await auditLog(base, serverKey)).status === 401, "under pepper B alone the old key is unknown (401)");
  });
  await withServer({ API_KEY_PEPPER: PEPPER_B, API_KEY_PEPPER_PREVIOUS: PEPPER_A }, async (base) => {
    check((await auditLog(base, serverKey)).status === 200, "with API_KEY_PEPPER_PREVIOUS=A the old key works (200)");
    await new Promise((r) => setTimeout(r, 500)); // the re-hash runs after the response (waitUntil)
  });
  await withServer({ API_KEY_PEPPER: PEPPER_B }, async (base) => {
    check((await auditLog(base, serverKey)).status === 200, "under pepper B alone the key still works: it was re-hashed on use");
  });
  const ips = spawnSync(
    "npx",
    [
      "wrangler",
      "d1",
      "execute",
      "DB",
      "--local",
      "--persist-to",
      state,
      "--json",
      "--command",
      "SELECT ip FROM audit_log WHERE event_type = 'AUTH_FAIL_MASTER_KEY'",
    ],
    { env, encoding: "utf8" },
  );
  const ip = JSON.parse(ips.stdout)[0]?.results?.[0]?.ip;
  check(typeof ip === "string" && ip.length > 0, `wrangler dev sets CF-Connecting-IP (audited as ${ip}), so the per-IP limit applies locally`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
finish();
