// The one email that carries an org's API keys: sent once, straight from the service's response, never stored.
import { EmailMessage } from "cloudflare:email";
import { createMimeMessage } from "mimetext/browser";
import { base64Lines } from "../../src/features/onboarding/email";
import type { PaymentEnv } from "./env";

const addressOf = (from: string) => /<([^>]+)>/.exec(from)?.[1] ?? from.trim();

/** The org's key pair: the client key (publishable) and the server key (secret; administers the org's keys). */
export interface OrgKeys {
  client: string;
  server: string;
}

export async function sendKeyEmail(env: PaymentEnv, to: string, orgId: string, keys: OrgKeys, reason: "created" | "rotated") {
  const subject = reason === "created" ? `Your API keys for ${orgId}` : `Your new API keys for ${orgId}`;
  const text = [
    reason === "created" ? "Thank you for your purchase. Your organization is ready." : "Your payment was received and access is restored with new keys; any older key no longer works.",
    "",
    `Organization: ${orgId}`,
    `Client key (publishable: may be used in a web page from your allowed origins): ${keys.client}`,
    `Server key (secret: keep it on your servers; it rotates and revokes your keys): ${keys.server}`,
    "",
    "These keys are shown only in this email and cannot be retrieved later. Store the server key in a secret manager.",
  ].join("\n");
  const msg = createMimeMessage();
  const name = /^(.*?)\s*</.exec(env.EMAIL_FROM)?.[1];
  msg.setSender(name ? { name, addr: addressOf(env.EMAIL_FROM) } : addressOf(env.EMAIL_FROM));
  msg.setRecipient(to);
  msg.setSubject(subject);
  msg.setHeader("Message-ID", `<${crypto.randomUUID()}@${addressOf(env.EMAIL_FROM).split("@")[1]}>`);
  msg.addMessage({ contentType: "text/plain", encoding: "base64", data: base64Lines(text) });
  const raw = msg.asRaw();
  // A few quick tries: once the service has answered, this email is the key's only way to the customer.
  for (let attempt = 1; ; attempt++) {
    try {
      return await env.EMAIL.send(new EmailMessage(addressOf(env.EMAIL_FROM), to, raw));
    } catch (err) {
      if (attempt >= 3) throw err;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}
