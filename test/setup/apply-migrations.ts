import { applyD1Migrations, env } from "cloudflare:test";

// Storage is isolated per test file; this runs before each file and applies only what is missing.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
