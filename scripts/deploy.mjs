// `npm run deploy [-- --dry-run]`: checks the production config, then applies both workers' D1 migrations and deploys
// the service and then the payment worker (it binds to the service's BillingService entrypoint, so the service goes
// first). With --dry-run: the same checks, then `wrangler deploy --dry-run` of both (offline; nothing is applied).
// PUBLIC_BASE_URL comes from the environment if set there, else from wrangler.toml's [vars].
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { wranglerEnv } from "./local.mjs";

const dryRun = process.argv.includes("--dry-run");
const fail = (message) => {
  console.error(`\n✘ npm run deploy: ${message}\n`);
  process.exit(1);
};
const tomlValue = (file, key) => new RegExp(`^${key}\\s*=\\s*"([^"]*)"`, "m").exec(readFileSync(file, "utf8"))?.[1];

const base = process.env.PUBLIC_BASE_URL ?? tomlValue("wrangler.toml", "PUBLIC_BASE_URL") ?? "";
let url;
try {
  url = new URL(base);
} catch {
  fail(
    `PUBLIC_BASE_URL is ${base ? `"${base}", not a URL` : "unset"}. Set it in wrangler.toml [vars] (or the environment) to this Worker's public https origin, e.g. https://keys.example.com: the welcome email's set-password link is built from it.`,
  );
}
if (url.protocol !== "https:" || ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname)) {
  fail(`PUBLIC_BASE_URL is "${base}": outside local dev it must be a public https origin (a localhost link in a customer's email reaches nobody).`);
}
if (!dryRun) {
  for (const file of ["wrangler.toml", "payment-worker/wrangler.toml"]) {
    if (/^database_id\s*=\s*"0{8}-/m.test(readFileSync(file, "utf8")))
      fail(`${file} still has the placeholder database_id: run \`npx wrangler d1 create …\` and put the id there (docs/operations.md, "Deploying").`);
  }
}

const run = (args) => {
  console.log(`\n$ wrangler ${args.join(" ")}`);
  const r = spawnSync("wrangler", args, { stdio: "inherit", env: wranglerEnv });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
const vars = ["--var", `PUBLIC_BASE_URL:${url.origin}`];
spawnSync("node", ["scripts/docs-assets.mjs"], { stdio: "inherit" });
if (dryRun) {
  run(["deploy", "--dry-run", "--outdir", "dist", ...vars]);
  run(["deploy", "--dry-run", "--outdir", "dist/payment-worker", "-c", "payment-worker/wrangler.toml"]);
} else {
  run(["d1", "migrations", "apply", "DB", "--remote"]);
  run(["deploy", ...vars]);
  run(["d1", "migrations", "apply", "DB", "--remote", "-c", "payment-worker/wrangler.toml"]);
  run(["deploy", "-c", "payment-worker/wrangler.toml"]);
}
console.log(`\n✓ ${dryRun ? "checked and bundled (dry run)" : "deployed"}: the service (PUBLIC_BASE_URL=${url.origin}), then the payment worker.`);
