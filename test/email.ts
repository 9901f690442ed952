// Test helpers for the emails the Worker sends: capture them, read their text and links, deliver outbox rows.
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { vi } from "vitest";
import worker from "../src/index";
import { uniq } from "./helpers";

export interface Sent {
  from: string;
  to: string;
  raw: string;
}

/** Replaces the send_email binding's send for this test, recording (or failing) every message. */
export function spyEmail(fail = false) {
  const sent: Sent[] = [];
  const spy = vi.spyOn(env.EMAIL, "send").mockImplementation((async (m: EmailMessage) => {
    if (fail) throw new Error("smtp down");
    // The raw MIME text sits on the EmailMessage under this internal name in workerd.
    sent.push({ from: m.from, to: m.to, raw: (m as unknown as Record<string, string>)["EmailMessage::raw"] });
  }) as never);
  return { sent, spy };
}

export const plainText = (raw: string) => {
  const m = /Content-Type: text\/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n([\s\S]*?)\r\n(?:\r\n)?--/i.exec(raw)!;
  return new TextDecoder().decode(Uint8Array.from(atob(m[1].replace(/\s+/g, "")), (ch) => ch.charCodeAt(0)));
};
/** The Subject header, decoded (mimetext writes it as =?utf-8?B?…?=). */
export const subjectOf = (raw: string) => {
  const v = /^Subject: (.*?)\r?$/m.exec(raw)?.[1] ?? "";
  const b = /^=\?utf-8\?B\?(.*)\?=$/i.exec(v);
  return b ? new TextDecoder().decode(Uint8Array.from(atob(b[1]), (ch) => ch.charCodeAt(0))) : v;
};
export const linkIn = (raw: string) => /\/set-password#token=([A-Za-z0-9_-]{43})/.exec(plainText(raw))?.[1];

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
