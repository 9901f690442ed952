// Shared bench plumbing: a throwaway local D1, a `wrangler dev` on a free port, and timing helpers.
import { spawn, spawnSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";

// The service runs the way `npm start` runs it, with the same .dev.vars (made here if missing).
await import("../scripts/dev-vars.mjs");
await import("../scripts/docs-assets.mjs");
export const SECRETS = Object.fromEntries(
  readFileSync(new URL("../.dev.vars", import.meta.url), "utf8")
    .split("\n")
    .map((line) => /^([A-Z0-9_]+)=(.*)$/.exec(line))
    .filter(Boolean)
    .map((m) => [m[1], m[2]]),
);

export const pepperId = () => createHmac("sha256", SECRETS.API_KEY_PEPPER).update("pepper-id").digest("hex").slice(0, 12);
export const keyHash = (plaintext) => createHmac("sha256", SECRETS.API_KEY_PEPPER).update(plaintext).digest("hex");

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
export const randomKeyBody = () => [...randomBytes(26)].map((b) => CROCKFORD[b & 31]).join("");

export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const env = { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false" };

export function freshDatabase(persistTo, config = "wrangler.toml") {
  rmSync(persistTo, { recursive: true, force: true });
  const envArgs = config === "wrangler.toml" ? ["--env", "local"] : [];
  const r = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local", "-c", config, ...envArgs, "--persist-to", persistTo], { env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr || r.stdout);
}

export function executeSql(persistTo, sql) {
  const file = `${persistTo}.sql`;
  writeFileSync(file, sql);
  const r = spawnSync("wrangler", ["d1", "execute", "DB", "--local", "--env", "local", "--persist-to", persistTo, "--file", file], { env, encoding: "utf8", maxBuffer: 1 << 26 });
  rmSync(file, { force: true });
  if (r.status !== 0) throw new Error(r.stderr || r.stdout);
}

/** Starts `wrangler dev` with the bench secrets (and any extra vars); resolves once it answers. */
export async function startWorker({ persistTo, configs = ["wrangler.toml"], vars = {}, environment = "local", probe = configs[0] === "wrangler.toml" ? "/" : "/hello" }) {
  const port = await freePort();
  vars = Object.fromEntries(Object.entries({ RATE_LIMITS: "off", ...vars }).map(([k, v]) => [k, String(v).replace("PORT", String(port))]));
  const args = ["dev", ...configs.flatMap((c) => ["-c", c]), ...(environment ? ["--env", environment] : []), "--port", String(port), "--ip", "127.0.0.1", "--persist-to", persistTo, "--log-level", "warn"];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const child = spawn("wrangler", args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(`${url}${probe}`);
      if (!res.ok) throw new Error(String(res.status));
      return { url, stop: () => { try { process.kill(-child.pid, "SIGTERM"); } catch {} } };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try { process.kill(-child.pid, "SIGTERM"); } catch {}
  throw new Error(`wrangler dev did not start:\n${log}`);
}

export async function timeRequests(n, makeRequest) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await makeRequest(i);
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`status ${res.status}`);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const pct = (p) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))];
  return { mean: times.reduce((a, b) => a + b, 0) / n, p50: pct(50), p99: pct(99) };
}

/** Runs autocannon against `url` for `seconds` with `connections`; `nextPath` varies each request's path. */
export async function load({ url, connections, seconds = 8, nextPath, method = "GET", headers, body, nextRequest }) {
  const { default: autocannon } = await import("autocannon");
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    method,
    headers,
    body,
    requests: nextRequest
      ? [{ setupRequest: (req) => ({ ...req, ...nextRequest() }) }]
      : nextPath
        ? [{ setupRequest: (req) => ({ ...req, path: nextPath() }) }]
        : undefined,
  });
  const errors = result.errors + result.timeouts + result.non2xx;
  return { rps: Math.round(result.requests.average), p50: result.latency.p50, p99: result.latency.p99, errors, total: result.requests.total };
}
