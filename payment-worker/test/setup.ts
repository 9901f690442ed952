import { applyD1Migrations, env } from "cloudflare:test";

// The service's database, seen through the payment worker's test binding: migrate it as the service's setup does.
await applyD1Migrations(env.SERVICE_DB, env.TEST_MIGRATIONS);
// The payment worker's own database.
await applyD1Migrations(env.DB, env.PAYMENT_MIGRATIONS);
