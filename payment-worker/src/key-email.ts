// The one email that carries an org's API key: sent once, straight from the service's response, never stored.
import { EmailMessage } from "cloudflare:email";
import type { PaymentEnv } from "./env";

const addressOf = (from: string) => /<([^>]+)>/.exec(from)?.[1] ?? from.trim();
const b64 = (s: string) => {
  let bin = "";
  for (const byte of new TextEncoder().encode(s)) bin += String.fromCharCode(byte);
  return btoa(bin).replace(/.{1,76}/g, "$&\r\n");
};

export async function sendKeyEmail(env: PaymentEnv, to: string, orgId: string, apiKey: string, reason: "created" | "rotated") {
  const subject = reason === "created" ? `Your API key for ${orgId}` : `Your new API key for ${orgId}`;
  const text = [
    reason === "created" ? "Thank you for your purchase. Your organization is ready." : "Your payment was received and access is restored with a new key; any older key no longer works.",
    "",
    `Organization: ${orgId}`,
    `API key: ${apiKey}`,
    "",
    "This key is shown only in this email and cannot be retrieved later. Store it in a secret manager.",
  ].join("\n");
  const raw = [
    `From: ${env.EMAIL_FROM}`,
    `To: ${to}`,
    `Subject: ${subject}`,
    `Message-ID: <${crypto.randomUUID()}@${addressOf(env.EMAIL_FROM).split("@")[1]}>`,
    `Date: ${new Date().toUTCString()}`,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: base64",
    "",
    b64(text),
  ].join("\r\n");
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
