import { app } from "./app";
import type { Bindings } from "./lib/http/context";
import { consumeOutbox, type OutboxMessage, sweepOutboxAndRetention } from "./features/onboarding/outbox";
import { consumeUsage, type UsageMessage } from "./verify/usage";

export { BillingService } from "./billing/entrypoint";
export { KeyVerifier } from "./verify/entrypoint";
export type { VerifyResult } from "./verify/verify-key";


export default {
  fetch: app.fetch,
  async queue(batch, env, _ctx) {
    if (batch.queue.endsWith("-usage")) return consumeUsage(batch as MessageBatch<UsageMessage>, env.DB);
    if (batch.queue.endsWith("-outbox")) return consumeOutbox(batch as MessageBatch<OutboxMessage>, env);
    throw new Error(`no consumer for queue ${batch.queue}`);
  },
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(sweepOutboxAndRetention(env));
  },
} satisfies ExportedHandler<Bindings>;
