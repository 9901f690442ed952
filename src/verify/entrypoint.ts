import { WorkerEntrypoint } from "cloudflare:workers";
import type { Bindings } from "../lib/http/context";
import { type VerifyResult, verifyKey } from "./verify-key";

/**
 * For sibling workers bound to this one by a service binding (`entrypoint = "KeyVerifier"`):
 *   const result = await env.KEYS.verifyKey(apiKey, { origin: request.headers.get("Origin") ?? undefined });
 */
export class KeyVerifier extends WorkerEntrypoint<Bindings> {
  async verifyKey(key: string, options: { origin?: string } = {}): Promise<VerifyResult> {
    return verifyKey(this.env, this.ctx, key, options);
  }
}
