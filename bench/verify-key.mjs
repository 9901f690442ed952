// verifyKey throughput over a real service binding: a sibling worker (bench/verify-client) calls KeyVerifier.
// Warm: one key again and again (answered from the isolate cache). Cold: a different valid key each request
// (every one a D1 lookup). Baseline: a bare hello worker called over the same kind of binding (bench/hello-worker);
// the caller's own /hello (no RPC at all) is shown for scale. Run: npm run bench:verify
import { executeSql, freshDatabase, keyHash, load, pepperId, randomKeyBody, startWorker } from "./lib.mjs";

export async function benchVerify({ seconds = 8, connections = [1, 10, 50], cold: withCold = true } = {}) {
  const PERSIST = ".wrangler/bench-verify";
  const COLD_KEYS = 60_000;
  freshDatabase(PERSIST);
  const now = new Date().toISOString();
  const keys = Array.from({ length: COLD_KEYS + 1 }, () => `ck_live_${randomKeyBody()}`);
  let sql = `INSERT INTO organizations (org_id, identifier, slug, name, domain, tier, allowed_origins, created_at, updated_at)
    VALUES ('org_bench_verify', 'bench-verify', 'org_bench_verify', 'Bench', 'general', 'enterprise', '[]', '${now}', '${now}');\n`;
  for (let i = 0; i < keys.length; i += 500) {
    sql += `INSERT INTO api_keys (key_hash, pepper_id, key_type, prefix, org_id, created_at) VALUES ${keys
      .slice(i, i + 500)
      .map((k) => `('${keyHash(k)}', '${pepperId()}', 'ck_live', '${k.slice(8, 16)}', 'org_bench_verify', '${now}')`)
      .join(",")};\n`;
  }
  executeSql(PERSIST, sql);
  const worker = await startWorker({ persistTo: PERSIST, configs: ["bench/verify-client/wrangler.toml", "wrangler.toml", "bench/hello-worker/wrangler.toml"] });
  const rows = [];
  try {
    const warmKey = keys[COLD_KEYS];
    await load({ url: `${worker.url}/verify?key=${warmKey}`, connections: 10, seconds: 2 }); // warm-up
    let next = 0;
    for (const c of connections) {
      const local = await load({ url: `${worker.url}/hello`, connections: c, seconds });
      const hello = await load({ url: `${worker.url}/hello-rpc`, connections: c, seconds });
      const warm = await load({ url: `${worker.url}/verify?key=${warmKey}`, connections: c, seconds });
      rows.push({ case: "hello in the caller (no RPC)", connections: c, ...local, ratio: local.rps / hello.rps });
      rows.push({ case: "bare hello worker over RPC (baseline)", connections: c, ...hello, ratio: 1 });
      rows.push({ case: "verifyKey warm", connections: c, ...warm, ratio: warm.rps / hello.rps });
      if (withCold) {
        const cold = await load({ url: `${worker.url}/verify`, connections: c, seconds, nextPath: () => `/verify?key=${keys[next++ % COLD_KEYS]}` });
        rows.push({ case: "verifyKey cold", connections: c, ...cold, ratio: cold.rps / hello.rps });
      }
    }
    if (next > COLD_KEYS) console.warn(`cold keys reused after ${COLD_KEYS}: later "cold" requests may be warm`);
  } finally {
    worker.stop();
  }
  return rows;
}

export function printTable(rows) {
  console.log("\n| case | conns | req/s | p50 ms | p99 ms | errors | ratio to baseline |\n|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.case} | ${r.connections} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.errors} | ${r.ratio.toFixed(2)} |`);
}

if (import.meta.url === `file://${process.argv[1]}`) printTable(await benchVerify());
