// `npm start [-- wrangler dev flags]`: dev secrets on first run, local D1 migrated, then `wrangler dev`.
import { spawnSync } from "node:child_process";

const run = (args) => {
  const r = spawnSync("wrangler", args, { stdio: "inherit", env: { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false" } });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

await import("./dev-vars.mjs");
await import("./docs-assets.mjs");
run(["d1", "migrations", "apply", "DB", "--local", "--env", "local"]);
const dev = spawnSync("wrangler", ["dev", "--env", "local", ...process.argv.slice(2)], { stdio: "inherit", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
process.exit(dev.status ?? 0);
