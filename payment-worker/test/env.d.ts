import type { D1Migration } from "cloudflare:test";
import type { PaymentEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends PaymentEnv {
      SERVICE_DB: D1Database;
      TEST_MIGRATIONS: D1Migration[];
      PAYMENT_MIGRATIONS: D1Migration[];
      API_KEY_PEPPER: string;
    }
  }
}
