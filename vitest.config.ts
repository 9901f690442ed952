import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import secrets from "./test/config/secrets.json" with { type: "json" };
import { startGithubKeysStandIn } from "./scripts/github-keys-stand-in.mjs";
import { startWebhookReceiver } from "./scripts/webhook-receiver.mjs";

// Tests run inside workerd with the Worker's own wrangler.toml.
// Fixed test secrets (never .dev.vars), shared with the payment worker's config. They also go into process.env so
// that wrangler's [secrets] check, which the plugin runs on wrangler.toml, finds every declared name (no warning).
export const TEST_SECRETS: Record<string, string> = secrets;
for (const [name, value] of Object.entries(TEST_SECRETS)) process.env[name] ??= value;
// wrangler's notes ("Using secrets defined in process.env", once per test file) are noise in a passing run.
process.env.WRANGLER_LOG ??= "warn";

/** Cases of the hostile-input suite: `npm test` runs a quick sample, .ci/run the full 13,200 (HOSTILE_CASES). */
const HOSTILE_CASES = process.env.HOSTILE_CASES ?? "2500";

export default defineConfig(async () => {
  const migrations = await readD1Migrations("migrations");
  // GitHub's secret scanning keys, served by a local stand-in the tests PUT their key pair into (never the internet).
  const githubKeys = await startGithubKeysStandIn({ port: 0 });
  githubKeys.server.unref();
  // Where test webhook endpoints point: it records every delivery and answers as the path says (see the script).
  const receiver = await startWebhookReceiver({ port: 0 });
  receiver.server.unref();
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            ...TEST_SECRETS,
            PUBLIC_BASE_URL: "http://localhost:8787",
            GITHUB_SECRET_SCANNING_KEYS_URL: githubKeys.url,
            WEBHOOK_RECEIVER_URL: receiver.url,
            TEST_MIGRATIONS: migrations,
            HOSTILE_CASES,
          },
        },
      }),
    ],
    test: {
      // The tests mostly wait on workerd and D1, not on this process: two files at once fit a 2-core machine.
      maxWorkers: 2,
      // What the Worker logs (JSON lines) is shown for a failing test only: a passing run is quiet.
      silent: "passed-only",
      setupFiles: ["./test/setup/apply-migrations.ts"],
      include: ["test/**/*.test.ts"],
    },
  };
});
