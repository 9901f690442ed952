// How a partner's list page costs at 1,000 vs 100,000 orgs (first page and a deep page), against `wrangler dev`
// with a local D1. Run: npm run bench:list
import { executeSql, freshDatabase, keyHash, pepperId, randomKeyBody, startWorker, timeRequests } from "./lib.mjs";

const PERSIST = ".wrangler/bench-list";
const SIZES = [100_000, 1_000];
const REQUESTS = 200;

freshDatabase(PERSIST);
const partners = [];
let seq = 0;
let sql = "";
for (const size of SIZES) {
  const id = `ptn_BENCH${String(size).padStart(21, "0")}`;
  const body = randomKeyBody();
  const key = `kvqp_${body}`;
  const now = new Date().toISOString();
  sql += `INSERT INTO partners (partner_id, name, org_count, created_at, updated_at) VALUES ('${id}', 'bench ${size}', ${size}, '${now}', '${now}');
INSERT INTO api_keys (key_hash, pepper_id, key_type, prefix, partner_id, created_at) VALUES ('${keyHash(key)}', '${pepperId()}', 'kvqp', '${body.slice(0, 8)}', '${id}', '${now}');
INSERT INTO organizations (org_id, identifier, slug, name, domain, tier, partner_id, external_id, created_at, updated_at)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${size})
  SELECT 'org_b${size}_' || i, lower(hex(randomblob(16))), 'b${size}-' || i, 'Org ' || i, 'general', 'starter', '${id}', 'ext-' || i, '${now}', '${now}' FROM n;
INSERT INTO api_keys (key_hash, pepper_id, key_type, prefix, org_id, created_at)
  SELECT lower(hex(randomblob(32))), 'bench', t.type, upper(substr(hex(randomblob(4)), 1, 8)), o.org_id, '${now}'
    FROM organizations o, (SELECT 'ck_live' AS type UNION ALL SELECT 'sk_live') t WHERE o.partner_id = '${id}';
`;
  partners.push({ size, key, firstSeq: seq + 1 });
  seq += size;
}
console.log(`Seeding ${SIZES.join(" and ")} orgs…`);
executeSql(PERSIST, sql);

const worker = await startWorker({ persistTo: PERSIST });
const rows = [];
try {
  for (const p of partners) {
    const headers = { "x-kelviq-partner-key": p.key };
    const deepCursor = Buffer.from(`v1:${p.firstSeq + 150}`).toString("base64url"); // the last page but one
    const page = (cursor) => () => fetch(`${worker.url}/api/v1/partner/organizations/?limit=100${cursor ? `&cursor=${cursor}` : ""}`, { headers });
    await timeRequests(20, page()); // warm: the partner key is now cached
    rows.push({ orgs: p.size, page: "first", ...(await timeRequests(REQUESTS, page())) });
    rows.push({ orgs: p.size, page: "deep", ...(await timeRequests(REQUESTS, page(deepCursor))) });
  }
} finally {
  worker.stop();
}

const fmt = (n) => n.toFixed(2).padStart(8);
console.log("\n| orgs    | page  | mean ms | p50 ms  | p99 ms  |\n|---------|-------|---------|---------|---------|");
for (const r of rows) console.log(`| ${String(r.orgs).padEnd(7)} | ${r.page.padEnd(5)} |${fmt(r.mean)} |${fmt(r.p50)} |${fmt(r.p99)} |`);
const mean = (orgs, page) => rows.find((r) => r.orgs === orgs && r.page === page).mean;
for (const page of ["first", "deep"]) {
  console.log(`ratio 100,000 / 1,000 (${page} page, mean): ${(mean(100_000, page) / mean(1_000, page)).toFixed(2)}`);
}
