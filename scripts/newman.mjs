// Runs the Postman collection with newman against the service started as `npm start` starts it (wrangler dev
// --env local, the same .dev.vars), on a free port and a fresh local D1. Run: npm run test:api
import { readFileSync } from "node:fs";
import newman from "newman";
import { freshDatabase, SECRETS, startWorker } from "../bench/lib.mjs";

const PERSIST = ".wrangler/newman";
freshDatabase(PERSIST);
const worker = await startWorker({ persistTo: PERSIST });
const environment = JSON.parse(readFileSync("postman/environment.json", "utf8"));
for (const v of environment.values) {
  if (v.key === "baseUrl") v.value = worker.url;
  else if (SECRETS[v.key]) v.value = SECRETS[v.key];
}
try {
  const summary = await new Promise((resolve, reject) =>
    newman.run(
      { collection: JSON.parse(readFileSync("postman/collection.json", "utf8")), environment, reporters: ["cli"], reporter: { cli: { noBanner: true } } },
      (err, s) => (err ? reject(err) : resolve(s)),
    ),
  );
  const { assertions, requests } = summary.run.stats;
  const failed = assertions.failed + summary.run.failures.filter((f) => !f.error?.name?.includes("Assertion")).length;
  console.log(`\nnewman: ${requests.total} requests, ${assertions.total} assertions`);
  console.log(`${assertions.total - assertions.failed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
} finally {
  worker.stop();
}
