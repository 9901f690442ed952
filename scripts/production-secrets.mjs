// `npm run secrets:production`: writes the secrets for a first deploy into git-ignored JSON files, one per worker,
// ready for `wrangler secret bulk` (docs/operations.md, "Deploying"). Generated from .dev.vars.example like the dev secrets
// (fresh random values; the previous pepper empty); never overwrites an existing file; prints no secret.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

/** The secret names a .dev.vars.example documents (lines `NAME=` with no value). */
const namesIn = (file) =>
  readFileSync(file, "utf8")
    .split("\n")
    .map((l) => /^([A-Z0-9_]+)=\s*$/.exec(l)?.[1])
    .filter(Boolean);

const valueFor = (name) => {
  if (name === "API_KEY_PEPPER_PREVIOUS" || name === "WEBHOOK_SECRET_KEY_PREVIOUS") return ""; // no rotation in progress
  if (name === "API_KEY_PEPPER") return randomBytes(32).toString("base64url");
  if (name === "STRIPE_WEBHOOK_SECRET") return "whsec_PASTE_THE_ENDPOINT_SECRET_FROM_STRIPE"; // Stripe makes it, not us
  if (name === "STRIPE_API_KEY") return "rk_live_PASTE_A_RESTRICTED_KEY_WITH_CHECKOUT_SESSIONS_READ";
  return `mk_${randomBytes(32).toString("base64url")}`;
};

const files = {
  "secrets.production.json": ".dev.vars.example",
  "payment-worker/secrets.production.json": "payment-worker/.dev.vars.example",
};
for (const [file, example] of Object.entries(files)) {
  if (existsSync(file)) {
    console.log(`${file} exists: kept as it is.`);
    continue;
  }
  const secrets = Object.fromEntries(namesIn(example).map((n) => [n, valueFor(n)]));
  writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  console.log(`wrote ${file} (git-ignored)`);
}
console.log(`
Paste Stripe's endpoint secret and a restricted API key into payment-worker/secrets.production.json. Upload, then delete or store them in your secret manager:
  npx wrangler secret bulk secrets.production.json
  npx wrangler secret bulk payment-worker/secrets.production.json -c payment-worker/wrangler.toml`);
