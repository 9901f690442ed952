// `npm start [-- wrangler dev flags]` (also `npm run dev`): dev secrets on first run, local D1 migrated, then
// `wrangler dev` on the one wrangler.toml, with PUBLIC_BASE_URL set for the port in use (8787 unless --port N).
import { spawnSync } from "node:child_process";
import { localVars, portOf, wranglerEnv } from "./local.mjs";

/** Applies the local D1 migrations, printing one line (wrangler's tables only when something fails). */
function migrate() {
  const r = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local"], { encoding: "utf8", env: wranglerEnv });
  if (r.status !== 0) {
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    process.exit(r.status ?? 1);
  }
  const applied = new Set(r.stdout.match(/\d{4}_[\w-]+\.sql(?=\s+│ ✅)/g) ?? []).size;
  console.log(applied ? `Local D1: applied ${applied} migration(s).` : "Local D1: up to date.");
}

await import("./dev-vars.mjs"); // prints the dev secrets it generates, once
await import("./docs-assets.mjs");
migrate();
const given = process.argv.slice(2);
const port = portOf(given);
console.log(`Starting the service on http://localhost:${port} (API reference: http://localhost:${port}/docs/; secrets in .dev.vars)…`);
const dev = spawnSync("wrangler", ["dev", ...localVars(port), ...given], { stdio: "inherit", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
process.exit(dev.status ?? 0);
