// `npm start [-- wrangler dev flags]` (also `npm run dev`): dev secrets on first run, local D1 migrated, then
// `wrangler dev` on the one wrangler.toml, with PUBLIC_BASE_URL set for the port in use (8787 unless --port N).
import { spawnSync } from "node:child_process";
import { localVars, portOf, wranglerEnv } from "./local.mjs";

const run = (args) => {
  const r = spawnSync("wrangler", args, { stdio: "inherit", env: wranglerEnv });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

await import("./dev-vars.mjs");
await import("./docs-assets.mjs");
run(["d1", "migrations", "apply", "DB", "--local"]);
const given = process.argv.slice(2);
const dev = spawnSync("wrangler", ["dev", ...localVars(portOf(given)), ...given], { stdio: "inherit", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
process.exit(dev.status ?? 0);
