// The welcome / set-password email: plain text and HTML, as a MIME message for the send_email binding.

export interface WelcomeEmail {
  from: string; // "Name <address>" or "address"
  to: string;
  orgName: string;
  link: string;
  expiresAt: string; // ISO
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]!);

const utf8Base64 = (s: string) => {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
};

const wrap76 = (s: string) => s.replace(/.{1,76}/g, "$&\r\n");

/** A header value: as is when plain ASCII, else RFC 2047 encoded. */
const headerText = (s: string) => (/^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${utf8Base64(s)}?=`);

/** The bare address of "Name <address>". */
export const addressOf = (from: string) => /<([^>]+)>/.exec(from)?.[1] ?? from.trim();

export function renderWelcomeEmail(e: WelcomeEmail) {
  const expires = new Date(e.expiresAt).toUTCString();
  // A fixed subject: the org name is partner-chosen text, and a subject line is where phishing text would work best.
  const subject = "Set your password";
  const text = [
    `Welcome to ${e.orgName}.`,
    "",
    "An account was created for you. Set your password with this link:",
    "",
    e.link,
    "",
    `The link works once and expires on ${expires} (72 hours after it was sent).`,
    "If you did not expect this email, ignore it.",
  ].join("\n");
  const html = `<!doctype html><html><body style="font-family:system-ui,sans-serif;line-height:1.5;color:#111">
<p>Welcome to <strong>${escapeHtml(e.orgName)}</strong>.</p>
<p>An account was created for you. Set your password with this link:</p>
<p><a href="${escapeHtml(e.link)}">Set your password</a></p>
<p style="color:#555">The link works once and expires on ${escapeHtml(expires)} (72 hours after it was sent).<br>
If you did not expect this email, ignore it.</p>
</body></html>`;
  return { subject, text, html };
}

export function toMime(e: WelcomeEmail, messageId: string): string {
  const { subject, text, html } = renderWelcomeEmail(e);
  const boundary = `b_${messageId.replace(/[^A-Za-z0-9]/g, "")}`;
  const domain = addressOf(e.from).split("@")[1] ?? "localhost";
  const fromName = /^(.*?)\s*</.exec(e.from)?.[1];
  return [
    `From: ${fromName ? `${headerText(fromName)} <${addressOf(e.from)}>` : addressOf(e.from)}`,
    `To: ${e.to}`,
    `Subject: ${headerText(subject)}`,
    `Message-ID: <${messageId}@${domain}>`,
    `Date: ${new Date().toUTCString()}`,
    "MIME-Version: 1.0",
    `Content-Type: multipart/alternative; boundary="${boundary}"`,
    "",
    `--${boundary}`,
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: base64",
    "",
    wrap76(utf8Base64(text)),
    `--${boundary}`,
    "Content-Type: text/html; charset=utf-8",
    "Content-Transfer-Encoding: base64",
    "",
    wrap76(utf8Base64(html)),
    `--${boundary}--`,
    "",
  ].join("\r\n");
}
