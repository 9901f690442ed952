// npm run bench: each case against its yardstick, interleaved in rounds (yardstick, case, case, yardstick, … — the
// order flips every round), so background load on this shared machine lands on both sides of each ratio. Reports
// the median ratio with its min and max. Prints its plan, how long it will take, and progress as it goes. Writes
// bench/results/latest.json (git-ignored); `-- --update-docs` also rewrites the table in docs/benchmarks.md, on
// purpose only.
//   BENCH_SECONDS (default 4) per measurement, BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default "1,10").
import { cpus, totalmem } from "node:os";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { executeSql, freshDatabase, keyHash, load, pepperId, randomKeyBody, SECRETS, startWorker } from "./lib.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? "1,10").split(",").map(Number);
const run = Date.now().toString(36);
let n = 0;

// ---- workers (all up at once, so rounds can alternate) -------------------------------------------------------
console.log("Starting the workers (about a minute)…");
freshDatabase(".wrangler/bench-baseline", "bench/baseline/wrangler.toml");
freshDatabase(".wrangler/bench-bare", "bench/bare-writes/wrangler.toml");
executeSql(
  ".wrangler/bench-bare",
  `INSERT INTO partners (partner_id, name, created_at, updated_at) VALUES ('ptn_BENCHBAREWRITES00000000000', 'bare', '${new Date().toISOString()}', '${new Date().toISOString()}');`,
  "bench/bare-writes/wrangler.toml",
);
freshDatabase(".wrangler/bench-service");
freshDatabase(".wrangler/bench-assets-first");
const VERIFY_DB = ".wrangler/bench-verify";
freshDatabase(VERIFY_DB);
const warmKey = `ck_live_${randomKeyBody()}`;
const now = new Date().toISOString();
executeSql(
  VERIFY_DB,
  `INSERT INTO organizations (org_id, identifier, slug, name, domain, tier, allowed_origins, created_at, updated_at) VALUES ('org_bench_verify', 'bench-verify', 'org_bench_verify', 'Bench', 'general', 'enterprise', '[]', '${now}', '${now}');
   INSERT INTO api_keys (key_hash, pepper_id, key_type, prefix, org_id, created_at) VALUES ('${keyHash(warmKey)}', '${pepperId()}', 'ck_live', '${warmKey.slice(8, 16)}', 'org_bench_verify', '${now}');`,
);
const workers = {};
try {
  workers.baseline = await startWorker({ persistTo: ".wrangler/bench-baseline", configs: ["bench/baseline/wrangler.toml"], probe: "/" });
  workers.bare = await startWorker({ persistTo: ".wrangler/bench-bare", configs: ["bench/bare-writes/wrangler.toml"], probe: "/" });
  workers.service = await startWorker({ persistTo: ".wrangler/bench-service" });
  // The same service with every path going through the static-asset router first (no run_worker_first).
  workers.assetsFirst = await startWorker({ persistTo: ".wrangler/bench-assets-first", configs: ["wrangler.toml"], assetsFirst: true });
  workers.verify = await startWorker({
    persistTo: VERIFY_DB,
    configs: ["bench/verify-client/wrangler.toml", "wrangler.toml", "bench/hello-worker/wrangler.toml"],
  });
  console.log("Workers up.");

  // ---- fixtures --------------------------------------------------------------------------------------------
  const post = (base, path, headers, body) =>
    fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) }).then((r) => r.json());
  const partner = await post(
    workers.service.url,
    "/v1/admin/partners",
    { "x-api-key": SECRETS.MASTER_ADMIN_KEY_PARTNER_ADMIN, "idempotency-key": `bench-${run}` },
    { name: "Bench Partner" },
  );
  const pk = { "x-kelviq-partner-key": partner.partner_key };
  const one = await post(workers.service.url, "/api/v1/partner/organizations/", pk, {
    externalId: `bench-read-${run}`,
    email: `read-${run}@bench.example.com`,
    businessName: "Bench Read",
  });

  /** A POST load on `base + path` whose every request is `next()` (fresh ids each time), at c connections. */
  const posts = (base, path, next) => (c) => load({ url: `${base}${path}`, connections: c, seconds: SECONDS, method: "POST", nextRequest: next });
  const json = { "content-type": "application/json" };
  const orgCreate = (base, path = "/v1/admin/org/create") =>
    posts(base, path, () => {
      const id = `org_bench_${run}_${n++}`;
      const body = { org_id: id, name: "Acme Corp", domain: "general", tier: "starter", allowed_origins: "https://acme.example.com" };
      return { headers: { ...json, "x-api-key": SECRETS.MASTER_ADMIN_KEY_ORG_CREATE, "idempotency-key": id }, body: JSON.stringify(body) };
    });
  const provision = (base, path, headers) =>
    posts(base, path, () => {
      const id = `bench-${run}-${n++}`;
      return { headers: { ...json, ...headers }, body: JSON.stringify({ externalId: id, email: `${id}@bench.example.com`, businessName: `Customer ${id}` }) };
    });
  const oneInsert = posts(workers.baseline.url, "/", () => ({ headers: json, body: JSON.stringify({ id: `b_${run}_${n++}`, name: "Acme Corp" }) }));

  const PAIRS = [
    {
      case: "org create",
      yardstick: "bare worker, same D1 batch",
      measure: orgCreate(workers.service.url),
      against: orgCreate(workers.bare.url, "/org-create"),
    },
    {
      case: "partner provision",
      yardstick: "bare worker, same D1 batch",
      measure: provision(workers.service.url, "/api/v1/partner/organizations/", pk),
      against: provision(workers.bare.url, "/provision", {}),
    },
    {
      case: "partner read",
      yardstick: "parse + 1 insert",
      measure: (c) =>
        load({ url: `${workers.service.url}/api/v1/partner/organizations/${one.organizationIdentifier}/`, connections: c, seconds: SECONDS, headers: pk }),
      against: oneInsert,
    },
    {
      case: "list page (100)",
      yardstick: "parse + 1 insert",
      measure: (c) => load({ url: `${workers.service.url}/api/v1/partner/organizations/?limit=100`, connections: c, seconds: SECONDS, headers: pk }),
      against: oneInsert,
    },
    {
      case: "org create, asset router first",
      yardstick: "org create, run_worker_first",
      measure: orgCreate(workers.assetsFirst.url),
      against: orgCreate(workers.service.url),
    },
    {
      case: "verifyKey warm",
      yardstick: "hello worker over RPC",
      measure: (c) => load({ url: `${workers.verify.url}/verify?key=${warmKey}`, connections: c, seconds: SECONDS }),
      against: (c) => load({ url: `${workers.verify.url}/hello-rpc`, connections: c, seconds: SECONDS }),
    },
  ];

  // BENCH_CASES="org create,partner provision" runs only those cases.
  const only = process.env.BENCH_CASES?.split(",").map((c) => c.trim());
  if (only) PAIRS.splice(0, PAIRS.length, ...PAIRS.filter((p) => only.includes(p.case)));
  const total = PAIRS.length * CONNECTIONS.length * ROUNDS * 2;
  console.log(
    `\nPlan: ${PAIRS.length} cases × ${CONNECTIONS.length} connection levels (${CONNECTIONS.join(", ")}) × ${ROUNDS} rounds × 2 sides × ${SECONDS} s = ${total} measurements, about ${Math.ceil((total * (SECONDS + 0.5)) / 60)} minutes.\n`,
  );
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const rows = [];
  let done = 0;
  for (const pair of PAIRS) {
    for (const c of CONNECTIONS) {
      const ratios = [];
      const sides = { case: [], yardstick: [] };
      for (let round = 1; round <= ROUNDS; round++) {
        // Alternate which side goes first, so a slow spell cannot favour one side every round.
        const order = round % 2 ? ["yardstick", "case"] : ["case", "yardstick"];
        const got = {};
        for (const side of order) {
          got[side] = await (side === "case" ? pair.measure(c) : pair.against(c));
          sides[side].push(got[side]);
          done++;
        }
        ratios.push(got.case.rps / got.yardstick.rps);
        console.log(
          `[${String(done).padStart(3)}/${total}] ${pair.case} × ${c}, round ${round}/${ROUNDS}: ${got.case.rps} vs ${got.yardstick.rps} req/s (${pair.yardstick}), ratio ${ratios.at(-1).toFixed(2)}, running median ${median(ratios).toFixed(2)}`,
        );
      }
      const pick = (side) => ({
        rps: median(sides[side].map((r) => r.rps)),
        p50: median(sides[side].map((r) => r.p50)),
        p99: median(sides[side].map((r) => r.p99)),
        errors: sides[side].reduce((a, r) => a + r.errors, 0),
      });
      rows.push({
        case: pair.case,
        yardstick: pair.yardstick,
        connections: c,
        ...pick("case"),
        yardstick_rps: pick("yardstick").rps,
        ratio_median: median(ratios),
        ratio_min: Math.min(...ratios),
        ratio_max: Math.max(...ratios),
      });
    }
  }

  // ---- report ----------------------------------------------------------------------------------------------
  const machine = {
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    memory_gib: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    date: new Date().toISOString(),
  };
  mkdirSync("bench/results", { recursive: true });
  writeFileSync("bench/results/latest.json", `${JSON.stringify({ machine, seconds: SECONDS, rounds: ROUNDS, rows }, null, 2)}\n`);
  const table = [
    `Run: ${machine.cpu}, ${machine.cores} cores, ${machine.memory_gib} GiB, Node ${machine.node}, ${machine.date.slice(0, 10)}; ${ROUNDS} interleaved rounds of ${SECONDS} s per side.`,
    "",
    "| case | yardstick | conns | case req/s | yardstick req/s | ratio median (min–max) | p50 / p99 ms | errors |",
    "|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.case} | ${r.yardstick} | ${r.connections} | ${r.rps} | ${r.yardstick_rps} | **${r.ratio_median.toFixed(2)}** (${r.ratio_min.toFixed(2)}–${r.ratio_max.toFixed(2)}) | ${r.p50} / ${r.p99} | ${r.errors} |`,
    ),
  ].join("\n");
  console.log(`\n${table}\n\nWrote bench/results/latest.json.`);
  if (process.argv.includes("--update-docs")) {
    const doc = readFileSync("docs/benchmarks.md", "utf8");
    const updated = doc.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, `<!-- bench:start -->\n${table}\n<!-- bench:end -->`);
    writeFileSync("docs/benchmarks.md", updated);
    console.log("Updated the table in docs/benchmarks.md (between the bench markers).");
  }
} finally {
  for (const w of Object.values(workers)) w.stop();
}
