import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import TEST_SECRETS from "../test/config/secrets.json" with { type: "json" };
import { startStripeStandIn } from "./scripts/stripe-stand-in.mjs";

// The payment worker is the worker under test; org-key-authority runs beside it, built from this repository, and
// the two talk through the real service binding to its BillingService entrypoint. SERVICE_DB is the service's own
// D1 database, for assertions; DB is the payment worker's own (its migrations are applied in test/setup.ts).
const here = (path: string) => new URL(path, import.meta.url).pathname;
const SERVICE_BUILD = here(".service-build");
const SERVICE_DB_ID = "org-key-authority-test";
export const STRIPE_WEBHOOK_SECRET = "whsec_test_payment_worker_0123456789abcdef";
const STRIPE_API_KEY = "rk_test_payment_worker_stand_in";
// wrangler's [secrets] check reads process.env: the declared secrets are there, so no "missing secrets" warning.
process.env.STRIPE_WEBHOOK_SECRET ??= STRIPE_WEBHOOK_SECRET;
process.env.STRIPE_API_KEY ??= STRIPE_API_KEY;
// wrangler's notes ("Using secrets defined in process.env") are noise in a passing run.
process.env.WRANGLER_LOG ??= "warn";

export default defineConfig(async () => {
  // The Stripe API stand-in the SDK calls (line items), on a free port of this machine; it never keeps vitest alive.
  const standIn = await startStripeStandIn({ port: 0 });
  standIn.server.unref();
  const build = spawnSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", SERVICE_BUILD], { encoding: "utf8", cwd: here("..") });
  if (build.status !== 0) throw new Error(`building the service failed:\n${build.stderr}`);
  const migrations = await readD1Migrations(here("../migrations"));
  const paymentMigrations = await readD1Migrations(here("migrations"));
  return {
    plugins: [
      // stripe's ESM build names source maps it does not ship; load it without them (Vite warns once per file else).
      {
        name: "stripe-without-source-maps",
        enforce: "pre" as const,
        load(id: string) {
          if (id.includes("/node_modules/stripe/") && id.endsWith(".js")) return readFileSync(id, "utf8").replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n");
        },
      },
      cloudflareTest({
        wrangler: { configPath: here("wrangler.toml") },
        miniflare: {
          // The payment worker's only secret: no master key.
          bindings: {
            STRIPE_WEBHOOK_SECRET,
            STRIPE_API_KEY,
            STRIPE_API_BASE: `http://127.0.0.1:${standIn.port}`,
            TEST_MIGRATIONS: migrations,
            PAYMENT_MIGRATIONS: paymentMigrations,
            API_KEY_PEPPER: TEST_SECRETS.API_KEY_PEPPER,
          },
          d1Databases: { SERVICE_DB: SERVICE_DB_ID, DB: "payment-worker-test" },
          workers: [
            {
              name: "org-key-authority",
              modules: true,
              scriptPath: `${SERVICE_BUILD}/index.js`,
              compatibilityDate: "2026-10-30",
              d1Databases: { DB: SERVICE_DB_ID },
              bindings: {
                ...TEST_SECRETS,
                SERVICE_NAME: "org-key-authority",
                EMAIL_FROM: "Kelviq <welcome@kelviq.example.com>",
                PUBLIC_BASE_URL: "http://localhost:8787",
              },
              ratelimits: {
                IP_RATE_LIMITER: { namespace_id: "7001", simple: { limit: 1_000_000, period: 60 } },
                KEY_RATE_LIMITER: { namespace_id: "7002", simple: { limit: 1_000_000, period: 60 } },
                SIGN_IN_RATE_LIMITER: { namespace_id: "7003", simple: { limit: 1_000_000, period: 60 } },
              },
              queueProducers: { USAGE_QUEUE: { queueName: "org-key-authority-usage" }, OUTBOX_QUEUE: { queueName: "org-key-authority-outbox" } },
              send_email: [{ name: "EMAIL" }],
            },
          ],
        },
      }),
    ],
    test: {
      // The workers' JSON log lines are shown for a failing test only: a passing run is quiet.
      silent: "passed-only",
      root: here("."),
      setupFiles: ["./test/setup.ts"],
      include: ["test/**/*.test.ts"],
    },
  };
});
