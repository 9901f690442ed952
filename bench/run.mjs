// npm run bench: the service against a baseline worker, under autocannon at a few concurrency levels.
//   baseline:   bench/baseline, parse + one D1 insert + reply (the yardstick for the HTTP rows)
//   service:    started as npm start starts it (wrangler dev --env local: rate limits out of the way), fresh D1
//   verifyKey:  over a real service binding from bench/verify-client, against its bare /hello
// Prints one table and writes bench/results.json. Then runs the list-paging benchmark (100,000 vs 1,000 orgs).
import { cpus, totalmem } from "node:os";
import { writeFileSync } from "node:fs";
import { freshDatabase, load, SECRETS, startWorker } from "./lib.mjs";
import { benchVerify } from "./verify-key.mjs";

const CONNECTIONS = [1, 10, 50];
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const run = Date.now().toString(36);
let n = 0;
const rows = [];

// Baseline
freshDatabase(".wrangler/bench-baseline", "bench/baseline/wrangler.toml");
const baselineWorker = await startWorker({ persistTo: ".wrangler/bench-baseline", configs: ["bench/baseline/wrangler.toml"], probe: "/" });
const baseline = {};
try {
  for (const c of CONNECTIONS) {
    baseline[c] = await load({
      url: `${baselineWorker.url}/`,
      connections: c,
      seconds: SECONDS,
      method: "POST",
      headers: { "content-type": "application/json" },
      nextRequest: () => ({ body: JSON.stringify({ id: `b_${run}_${n++}`, name: "Acme Corp", tier: "starter" }) }),
    });
    rows.push({ case: "baseline: parse + 1 insert", connections: c, ...baseline[c], ratio: 1 });
  }
} finally {
  baselineWorker.stop();
}

// The service
freshDatabase(".wrangler/bench-service");
const service = await startWorker({ persistTo: ".wrangler/bench-service" });
try {
  const post = (path, headers, body) => fetch(`${service.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) }).then((r) => r.json());
  const partner = await post("/v1/admin/partners", { "x-api-key": SECRETS.MASTER_ADMIN_KEY_PARTNER_ADMIN, "idempotency-key": `bench-${run}` }, { name: "Bench Partner" });
  const pk = { "x-kelviq-partner-key": partner.partner_key };
  const one = await post("/api/v1/partner/organizations/", pk, { externalId: `bench-read-${run}`, email: `read-${run}@bench.example.com`, businessName: "Bench Read" });
  const cases = {
    "partner read": (c) => load({ url: `${service.url}/api/v1/partner/organizations/${one.organizationIdentifier}/`, connections: c, seconds: SECONDS, headers: pk }),
    "list page (100)": (c) => load({ url: `${service.url}/api/v1/partner/organizations/?limit=100`, connections: c, seconds: SECONDS, headers: pk }),
    "org create": (c) =>
      load({
        url: `${service.url}/v1/admin/org/create`,
        connections: c,
        seconds: SECONDS,
        method: "POST",
        nextRequest: () => {
          const id = `org_bench_${run}_${n++}`;
          return {
            headers: { "content-type": "application/json", "x-api-key": SECRETS.MASTER_ADMIN_KEY_ORG_CREATE, "idempotency-key": id },
            body: JSON.stringify({ org_id: id, name: "Acme Corp", domain: "general", tier: "starter", allowed_origins: "https://acme.example.com" }),
          };
        },
      }),
    // Last: each provision also queues a welcome email, which the consumer sends in the background.
    "partner provision": (c) =>
      load({
        url: `${service.url}/api/v1/partner/organizations/`,
        connections: c,
        seconds: SECONDS,
        method: "POST",
        nextRequest: () => {
          const id = `bench-${run}-${n++}`;
          return { headers: { "content-type": "application/json", ...pk }, body: JSON.stringify({ externalId: id, email: `${id}@bench.example.com`, businessName: `Customer ${id}` }) };
        },
      }),
  };
  for (const [name, measure] of Object.entries(cases)) {
    for (const c of CONNECTIONS) {
      const r = await measure(c);
      rows.push({ case: name, connections: c, ...r, ratio: r.rps / baseline[c].rps });
    }
  }
} finally {
  service.stop();
}

// verifyKey, warm, against a bare hello in the calling worker
rows.push(...(await benchVerify({ seconds: SECONDS, connections: CONNECTIONS, cold: false })));

const machine = { cpu: cpus()[0]?.model, cores: cpus().length, memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString() };
writeFileSync("bench/results.json", `${JSON.stringify({ machine, seconds_per_row: SECONDS, rows }, null, 2)}\n`);
console.log(`\nMachine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory_gib} GiB, Node ${machine.node}, ${machine.date}`);
console.log("\n| case | conns | req/s | p50 ms | p99 ms | errors | ratio to baseline |\n|---|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.case} | ${r.connections} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.errors} | ${r.ratio.toFixed(2)} |`);
