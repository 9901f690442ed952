// The welcome / set-password email: plain text and HTML, as a MIME message for the send_email binding.
import { createMimeMessage } from "mimetext/browser";

export interface WelcomeEmail {
  from: string; // "Name <address>" or "address"
  to: string;
  orgName: string;
  link: string;
  expiresAt: string; // ISO
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]!);

/** UTF-8 text as base64 in 76-character lines: mimetext sends a base64 part's data as given. */
export const base64Lines = (s: string) => {
  let bin = "";
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/.{1,76}/g, "$&\r\n").trimEnd();
};

/** The bare address of "Name <address>". */
export const addressOf = (from: string) => /<([^>]+)>/.exec(from)?.[1] ?? from.trim();

/**
 * Partner-chosen text (the org name), made so that no mail client turns it into a link: a dot before a letter or
 * digit, "://" and an "@" before a letter or digit are bracketed ("evil[.]example", "https[:]//", "a[at]b"). The
 * only link in the email is ours.
 */
export const unlinkable = (s: string) =>
  s.replace(/\.(?=[\p{L}\p{N}])/gu, "[.]").replace(/:\/\//g, "[:]//").replace(/@(?=[\p{L}\p{N}])/gu, "[at]");

export function renderWelcomeEmail(e: WelcomeEmail) {
  const expires = new Date(e.expiresAt).toUTCString();
  const orgName = unlinkable(e.orgName);
  // A fixed subject: the org name is partner-chosen text, and a subject line is where phishing text would work best.
  const subject = "Set your password";
  const text = [
    `Welcome to ${orgName}.`,
    "",
    "An account was created for you. Set your password with this link:",
    "",
    e.link,
    "",
    `The link works once and expires on ${expires} (72 hours after it was sent).`,
    "If you did not expect this email, ignore it.",
  ].join("\n");
  const html = `<!doctype html><html><body style="font-family:system-ui,sans-serif;line-height:1.5;color:#111">
<p>Welcome to <strong>${escapeHtml(orgName)}</strong>.</p>
<p>An account was created for you. Set your password with this link:</p>
<p><a href="${escapeHtml(e.link)}">Set your password</a></p>
<p style="color:#555">The link works once and expires on ${escapeHtml(expires)} (72 hours after it was sent).<br>
If you did not expect this email, ignore it.</p>
</body></html>`;
  return { subject, text, html };
}

/** The email as a MIME message (multipart/alternative: text and HTML) for the send_email binding, built with mimetext. */
export function toMime(e: WelcomeEmail, messageId: string): string {
  const { subject, text, html } = renderWelcomeEmail(e);
  const address = addressOf(e.from);
  const name = /^(.*?)\s*</.exec(e.from)?.[1];
  const msg = createMimeMessage();
  msg.setSender(name ? { name, addr: address } : address);
  msg.setRecipient(e.to);
  msg.setSubject(subject);
  msg.setHeader("Message-ID", `<${messageId}@${address.split("@")[1] ?? "localhost"}>`);
  msg.addMessage({ contentType: "text/plain", encoding: "base64", data: base64Lines(text) });
  msg.addMessage({ contentType: "text/html", encoding: "base64", data: base64Lines(html) });
  return msg.asRaw();
}
