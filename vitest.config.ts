import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Tests run inside workerd with the Worker's own wrangler.toml; secrets are fixed test values (never .dev.vars).
export const TEST_SECRETS = {
  API_KEY_PEPPER: "test-pepper-0123456789abcdef0123456789abcdef",
  MASTER_ADMIN_KEY_ORG_CREATE: "test-master-org-create",
  MASTER_ADMIN_KEY_BILLING_SUSPEND: "test-master-billing-suspend",
  MASTER_ADMIN_KEY_BILLING_ROTATE: "test-master-billing-rotate",
  MASTER_ADMIN_KEY_ORG_USAGE_READ: "test-master-org-usage-read",
  MASTER_ADMIN_KEY_ORG_SUSPEND: "test-master-org-suspend",
  MASTER_ADMIN_KEY_ORG_REACTIVATE: "test-master-org-reactivate",
  MASTER_ADMIN_KEY_ORG_FORCE_ROTATE: "test-master-org-force-rotate",
  MASTER_ADMIN_KEY_ORG_FORCE_REVOKE: "test-master-org-force-revoke",
  MASTER_ADMIN_KEY_PARTNER_ADMIN: "test-master-partner-admin",
};

export default defineConfig(async () => {
  const migrations = await readD1Migrations("migrations");
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: { bindings: { ...TEST_SECRETS, TEST_MIGRATIONS: migrations } },
      }),
    ],
    test: {
      setupFiles: ["./test/setup/apply-migrations.ts"],
      include: ["test/**/*.test.ts"],
    },
  };
});
