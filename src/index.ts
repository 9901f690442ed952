import { app } from "./app";
import type { Bindings } from "./lib/http/context";
import { consumeOutbox, type OutboxMessage, sweepOutboxAndRetention } from "./features/onboarding/outbox";
import { consumeUsage, type UsageMessage } from "./verify/usage";
import { consumeWebhooks, sweepWebhooks } from "./features/webhooks/delivery";
import type { WebhookWake } from "./lib/data/events";

export { BillingService } from "./billing/entrypoint";
export { KeyVerifier } from "./verify/entrypoint";
export type { VerifyResult } from "./verify/verify-key";

export default {
  fetch: app.fetch,
  async queue(batch, env, _ctx) {
    if (batch.queue.endsWith("-usage")) return consumeUsage(batch as MessageBatch<UsageMessage>, env);
    if (batch.queue.endsWith("-outbox")) return consumeOutbox(batch as MessageBatch<OutboxMessage>, env);
    if (batch.queue.endsWith("-webhooks")) return consumeWebhooks(batch as MessageBatch<WebhookWake>, env);
    throw new Error(`no consumer for queue ${batch.queue}`);
  },
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(sweepOutboxAndRetention(env));
    ctx.waitUntil(sweepWebhooks(env));
  },
} satisfies ExportedHandler<Bindings>;
