import Stripe from "stripe";
import { TransientServiceError } from "./billing";
import type { PaymentEnv } from "./env";
import { HANDLERS } from "./events";
import { log, newRequestId, withRequestId } from "./log";
import { claimEvent, finishEvent, releaseEvent } from "./state";
import { sweepUsage } from "./sweep";

const cryptoProvider = Stripe.createSubtleCryptoProvider();
const json = (body: unknown, status = 200) => Response.json(body, { status });

/** Stripe's event payloads are far smaller; anything bigger is refused before it is read whole or hashed. */
const MAX_WEBHOOK_BYTES = 256 * 1024;

/** The body as text, or null once it passes `max` bytes (by Content-Length, or while streaming a body without one). */
async function readLimited(request: Request, max: number): Promise<string | null> {
  if (Number(request.headers.get("content-length") ?? 0) > max) return null;
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) bytes.set(chunk, at), (at += chunk.byteLength);
  return new TextDecoder().decode(bytes);
}

async function webhook(request: Request, env: PaymentEnv, requestId: string): Promise<Response> {
  const signature = request.headers.get("stripe-signature");
  if (!signature) return json({ error: "missing Stripe-Signature" }, 400);
  const payload = await readLimited(request, MAX_WEBHOOK_BYTES);
  if (payload === null) return json({ error: `the body must be at most ${MAX_WEBHOOK_BYTES} bytes` }, 413);
  let event: Stripe.Event;
  try {
    // Default tolerance (300 s): stale, tampered or unsigned events are refused.
    event = await Stripe.webhooks.constructEventAsync(payload, signature, env.STRIPE_WEBHOOK_SECRET, undefined, cryptoProvider);
  } catch {
    return json({ error: "invalid signature" }, 400);
  }
  const handle = HANDLERS[event.type];
  if (!handle) return json({ received: true, ignored: event.type });

  // Our own memory of processed events (35 days): a redelivery, however late, never acts twice; concurrent
  // deliveries of one event are serialized by the claim (the others get 409, and Stripe delivers them again later).
  const claim = await claimEvent(env.DB, event.id, event.type);
  if (!claim.claimed) {
    if (claim.status === "done") return json({ received: true, action: "duplicate", detail: claim.outcome });
    return json({ error: "this event is being processed; retry later" }, 409);
  }
  try {
    const outcome = await withRequestId(event.id, requestId, () => handle(event, env));
    await finishEvent(env.DB, event.id, outcome.action);
    return json({ received: true, ...outcome });
  } catch (err) {
    await releaseEvent(env.DB, event.id);
    if (err instanceof TransientServiceError) {
      log({ level: "warn", request_id: requestId, event_id: event.id, type: event.type, action: "retry_later", detail: err.message });
      return json({ error: "org service unavailable; retry" }, 503);
    }
    throw err;
  }
}

export default {
  async fetch(request, env, _ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/stripe/webhook" && request.method === "POST") {
      const requestId = newRequestId();
      const res = await webhook(request, env, requestId);
      res.headers.set("X-Request-Id", requestId);
      return res;
    }
    if (url.pathname === "/" && request.method === "GET") return json({ service: "payment-worker", status: "ok" });
    return json({ error: "not found" }, 404);
  },
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(sweepUsage(env));
  },
} satisfies ExportedHandler<PaymentEnv>;
