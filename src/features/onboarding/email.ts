// The welcome / set-password email: plain text and HTML, as a MIME message for the send_email binding.
import { createMimeMessage } from "mimetext/browser";

/** What the outbox sends an org's owner. None of them carries a key: keys are minted in the console. */
export type OwnerEmailKind = "welcome_email" | "access_restored" | "password_reset" | "key_exposed";

export interface WelcomeEmail {
  from: string; // "Name <address>" or "address"
  to: string;
  orgName: string | null;
  /** The set-password link (a token: invite or reset), or the console's sign-in page (the owner has a password). */
  link: string;
  /** When a token link expires (ISO); null for a sign-in link. */
  expiresAt: string | null;
  kind?: OwnerEmailKind;
  /** key_exposed: which key (type prefix + 8 characters) was reported, and where it was found. */
  exposed?: { keyPrefix: string; url: string | null };
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]!);

/** UTF-8 text as base64 in 76-character lines: mimetext sends a base64 part's data as given. */
export const base64Lines = (s: string) => {
  let bin = "";
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin)
    .replace(/.{1,76}/g, "$&\r\n")
    .trimEnd();
};

/** The bare address of "Name <address>". */
export const addressOf = (from: string) => /<([^>]+)>/.exec(from)?.[1] ?? from.trim();

/**
 * Partner-chosen text (the org name), made so that no mail client turns it into a link: a dot before a letter or
 * digit, "://" and an "@" before a letter or digit are bracketed ("evil[.]example", "https[:]//", "a[at]b"). The
 * only link in the email is ours.
 */
export const unlinkable = (s: string) =>
  s
    .replace(/\.(?=[\p{L}\p{N}])/gu, "[.]")
    .replace(/:\/\//g, "[:]//")
    .replace(/@(?=[\p{L}\p{N}])/gu, "[at]");

export function renderWelcomeEmail(e: WelcomeEmail) {
  const kind = e.kind ?? "welcome_email";
  const orgName = unlinkable(e.orgName ?? "your organization");
  const expires = e.expiresAt ? new Date(e.expiresAt).toUTCString() : null;
  const tokenLink = expires !== null;
  // Fixed subjects: the org name is partner-chosen text, and a subject line is where phishing text would work best.
  const subject =
    kind === "key_exposed"
      ? "A key of yours was found in public and revoked"
      : kind === "password_reset"
        ? "Reset your password"
        : kind === "access_restored"
          ? "Your access is restored"
          : tokenLink
            ? "Set your password"
            : "Your new organization is ready";
  const opening = {
    welcome_email: `Welcome to ${orgName}.`,
    access_restored: `Your payment was received and access to ${orgName} is restored. Your previous API keys stay revoked: sign in to the console to create new ones.`,
    password_reset: "Someone (we hope you) asked to reset the password of your account.",
    key_exposed: `The key ${e.exposed?.keyPrefix ?? ""}… of ${orgName} was reported leaked${e.exposed?.url ? ` (found at ${e.exposed.url})` : ""} and is revoked: it no longer works. Rotate it in the console to get a new one, or ask your operator to force-rotate the organization's keys.`,
  }[kind];
  const action = tokenLink
    ? kind === "password_reset"
      ? "Choose a new password with this link:"
      : "Set your password with this link, then sign in to the console to create your API keys:"
    : "Sign in to the console to create and manage your API keys:";
  const button = tokenLink ? (kind === "password_reset" ? "Reset your password" : "Set your password") : "Sign in";
  const note = tokenLink
    ? `The link works once and expires on ${expires} (${kind === "password_reset" ? "1 hour" : "72 hours"} after it was sent).`
    : "No API key is ever sent by email.";
  const text = [opening, "", action, "", e.link, "", note, "If you did not expect this email, ignore it."].join("\n");
  const html = `<!doctype html><html><body style="font-family:system-ui,sans-serif;line-height:1.5;color:#111">
<p>${escapeHtml(opening)}</p>
<p>${escapeHtml(action)}</p>
<p><a href="${escapeHtml(e.link)}">${escapeHtml(button)}</a></p>
<p style="color:#555">${escapeHtml(note)}<br>
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
