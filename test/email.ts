// Test helpers for the emails the Worker sends: capture them, read their text and links, deliver outbox rows.
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { vi } from "vitest";
import worker from "../src/index";
import { uniq } from "./helpers";

/** A message handed to the send_email binding (structured: the runtime builds the MIME). */
export interface Sent {
  from: string;
  fromName: string | null;
  to: string;
  subject: string;
  text: string;
  html: string;
}

type Builder = { from: string | { name: string; email: string }; to: string; subject: string; text?: string; html?: string };

/** Replaces the send_email binding's send for this test, recording (or failing) every message. */
export function spyEmail(fail = false) {
  const sent: Sent[] = [];
  const spy = vi.spyOn(env.EMAIL, "send").mockImplementation((async (m: Builder) => {
    if (fail) throw new Error("smtp down");
    const from = typeof m.from === "string" ? { name: null, email: m.from } : m.from;
    sent.push({ from: from.email, fromName: from.name, to: m.to, subject: m.subject, text: m.text ?? "", html: m.html ?? "" });
  }) as never);
  return { sent, spy };
}

export const plainText = (m: Sent) => m.text;
export const subjectOf = (m: Sent) => m.subject;
export const linkIn = (m: Sent) => /\/set-password#token=([A-Za-z0-9_-]{43})/.exec(m.text)?.[1];

export async function until<T>(fn: () => Promise<T | undefined | null | false>, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs the outbox consumer on one row (as the queue would), with bindings replaced if given. */
export async function deliver(outboxId: string, attempts = 1, bindings: Partial<Env> = {}) {
  const batch = createMessageBatch("org-key-authority-outbox", [{ id: uniq("msg"), timestamp: new Date(), attempts, body: { outbox_id: outboxId } }]);
  const retry = vi.spyOn(batch.messages[0], "retry");
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...bindings }, ctx);
  return { ...(await getQueueResult(batch, ctx)), retryDelays: retry.mock.calls.map((c) => c[0]?.delaySeconds) };
}

/** Every outbox row of this test file's database, delivered (captured by a spyEmail set up before). */
export async function deliverAllOutbox() {
  const { results } = await env.DB.prepare("SELECT id FROM outbox WHERE status = 'pending'").all<{ id: string }>();
  for (const { id } of results) await deliver(id);
  return results.length;
}
