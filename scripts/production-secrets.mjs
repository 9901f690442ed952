// `npm run secrets:production`: writes the secrets for a first deploy into git-ignored JSON files, one per worker,
// ready for `wrangler secret bulk` (the README's deploy steps). Generated from .dev.vars.example like the dev secrets
// (fresh random values; the previous pepper empty); never overwrites an existing file; prints no secret.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const files = {
  "secrets.production.json": () => {
    const names = readFileSync(".dev.vars.example", "utf8").split("\n").map((l) => /^([A-Z0-9_]+)=\s*$/.exec(l)?.[1]).filter(Boolean);
    return Object.fromEntries(
      names.map((n) => [n, n === "API_KEY_PEPPER_PREVIOUS" ? "" : n === "API_KEY_PEPPER" ? randomBytes(32).toString("base64url") : `mk_${randomBytes(32).toString("base64url")}`]),
    );
  },
  // Stripe's signing secret for your webhook endpoint (Dashboard → Webhooks): paste it in before uploading.
  "payment-worker/secrets.production.json": () => ({ STRIPE_WEBHOOK_SECRET: "whsec_PASTE_THE_ENDPOINT_SECRET_FROM_STRIPE" }),
};
for (const [file, make] of Object.entries(files)) {
  if (existsSync(file)) {
    console.log(`${file} exists: kept as it is.`);
    continue;
  }
  writeFileSync(file, `${JSON.stringify(make(), null, 2)}\n`, { mode: 0o600 });
  console.log(`wrote ${file} (git-ignored)`);
}
console.log(`
Upload, then delete or store them in your secret manager:
  npx wrangler secret bulk secrets.production.json
  npx wrangler secret bulk payment-worker/secrets.production.json -c payment-worker/wrangler.toml`);
