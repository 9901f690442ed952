// npm run bench:profile [-- "partner provision"|"org create"]: where the Worker's CPU time goes. Starts the service
// (as the benchmarks do), connects to workerd's inspector, samples the CPU profile while autocannon sends the
// requests (10 connections, BENCH_SECONDS, default 6), and prints self time by module and the top functions.
// The raw profile goes to bench/results/<case>.cpuprofile (git-ignored; open it in Chrome DevTools).
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../scripts/local.mjs";
import { executeSql, freshDatabase, load, SECRETS, startWorker } from "./lib.mjs";

const which = process.argv[2] ?? "partner provision";
// --bare: the same load on the yardstick (bench/bare-writes), to compare where the time goes on each side.
const bare = process.argv.includes("--bare");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const persistTo = ".wrangler/bench-profile";
freshDatabase(persistTo, bare ? "bench/bare-writes/wrangler.toml" : "wrangler.toml");
if (bare) {
  const now = new Date().toISOString();
  executeSql(
    persistTo,
    `INSERT INTO partners (partner_id, name, created_at, updated_at) VALUES ('ptn_BENCHBAREWRITES00000000000', 'bare', '${now}', '${now}');`,
    "bench/bare-writes/wrangler.toml",
  );
}
const inspector = await freePort();
const worker = await startWorker({
  persistTo,
  ...(bare ? { configs: ["bench/bare-writes/wrangler.toml"], probe: "/" } : {}),
  extraArgs: ["--inspector-port", String(inspector)],
});
const run = Date.now().toString(36);
let n = 0;
try {
  const post = (path, headers, body) =>
    fetch(`${worker.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) }).then((r) =>
      r.json(),
    );
  const partner = bare
    ? {}
    : await post("/v1/admin/partners", { "x-api-key": SECRETS.MASTER_ADMIN_KEY_PARTNER_ADMIN, "idempotency-key": `profile-${run}` }, { name: "Profile" });
  const next =
    which === "org create"
      ? () => {
          const id = `org_profile_${run}_${n++}`;
          return {
            headers: { "content-type": "application/json", "x-api-key": SECRETS.MASTER_ADMIN_KEY_ORG_CREATE, "idempotency-key": id },
            body: JSON.stringify({ org_id: id, name: "Acme Corp", domain: "general", tier: "starter", allowed_origins: "https://acme.example.com" }),
          };
        }
      : () => {
          const id = `profile-${run}-${n++}`;
          return {
            headers: { "content-type": "application/json", "x-kelviq-partner-key": partner.partner_key },
            body: JSON.stringify({ externalId: id, email: `${id}@bench.example.com`, businessName: `Customer ${id}` }),
          };
        };
  const path = bare
    ? which === "org create"
      ? "/org-create"
      : "/provision"
    : which === "org create"
      ? "/v1/admin/org/create"
      : "/api/v1/partner/organizations/";

  const targets = await (await fetch(`http://127.0.0.1:${inspector}/json`)).json();
  const target = targets.find((t) => t.title?.includes("org-key-authority")) ?? targets[0];
  // The inspector proxy of wrangler dev accepts DevTools clients only: it checks the Origin header.
  const ws = new WebSocket(target.webSocketDebuggerUrl, { headers: { Origin: `http://127.0.0.1:${inspector}` } });
  await new Promise((resolve, reject) => ((ws.onopen = resolve), (ws.onerror = reject)));
  let id = 0;
  const pending = new Map();
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.id && pending.has(msg.id)) pending.get(msg.id)(msg.result);
  };
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      pending.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 200 });
  await load({ url: `${worker.url}${path}`, connections: 10, seconds: 2, method: "POST", nextRequest: next }); // warm-up
  await send("Profiler.start");
  const result = await load({ url: `${worker.url}${path}`, connections: 10, seconds: SECONDS, method: "POST", nextRequest: next });
  const { profile } = await send("Profiler.stop");
  ws.close();

  // wrangler dev's bundle (gone when it stops): esbuild marks where each module starts ("// src/…",
  // "// node_modules/…"), so a sampled line of index.js names its module.
  const bundles = [];
  const walk = (dir) => {
    for (const name of existsSync(dir) ? readdirSync(dir) : []) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name === "index.js") bundles.push(path);
    }
  };
  walk(".wrangler/tmp");
  const bundle = bundles
    .map((path) => ({ path, text: readFileSync(path, "utf8") }))
    .find((b) => b.text.includes(bare ? "bench/bare-writes" : "registerWebhooks"));
  const starts = [];
  for (const [i, line] of (bundle?.text.split("\n") ?? []).entries()) {
    const m = /^\/\/ ((?:src|node_modules|client|bench)\/\S+)$/.exec(line);
    if (m) starts.push([i, m[1].replace(/^node_modules\/((?:@[^/]+\/)?[^/]+)\/.*$/, "$1")]);
  }
  const sourceOf = (line) => {
    let lo = 0;
    let hi = starts.length - 1;
    let found = "index.js";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid][0] <= line) (found = starts[mid][1]), (lo = mid + 1);
      else hi = mid - 1;
    }
    return found;
  };

  mkdirSync("bench/results", { recursive: true });
  const file = `bench/results/${which.replace(/\W+/g, "-")}${bare ? "-bare" : ""}.cpuprofile`;
  writeFileSync(file, JSON.stringify(profile));

  // Self time per node from the samples, then grouped.
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const moduleOf = (frame) => {
    const url = frame.url ?? "";
    if (url === "index.js") return sourceOf(frame.lineNumber);
    if (!url) return frame.functionName === "(idle)" ? "(idle: waiting on I/O)" : frame.functionName || "(native)";
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (m) return m[1];
    const src = /((?:src|bench)\/[^?]+)/.exec(url);
    return src ? src[1] : url.split("/").pop();
  };
  const group = (key) => {
    const out = new Map();
    for (const [nodeId, us] of self) {
      const k = key(byId.get(nodeId).callFrame);
      out.set(k, (out.get(k) ?? 0) + us);
    }
    return [...out].sort((a, b) => b[1] - a[1]);
  };
  const pct = (us) => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
  console.log(`\n${which}${bare ? " (bare worker)" : ""}: ${result.rps} req/s at 10 connections for ${SECONDS} s; ${(total / 1e6).toFixed(2)} s of samples.\n`);
  console.log("Self time by module:");
  for (const [k, us] of group(moduleOf).slice(0, 15)) console.log(`  ${pct(us)}  ${k}`);
  console.log("\nTop functions (self time):");
  for (const [k, us] of group((f) => `${f.functionName || "(anonymous)"}  ${moduleOf(f)}:${f.lineNumber + 1}`).slice(0, 20)) console.log(`  ${pct(us)}  ${k}`);
  console.log(`\nWrote ${file}.`);
} finally {
  worker.stop();
}
