// The owner's emails (welcome, access restored, password reset, key exposed): plain text and HTML, handed to the
// send_email binding as a structured message (the runtime builds the MIME).

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
  const sentTo = `This email was sent to ${e.to}.`;
  const text = [opening, "", action, "", e.link, "", note, "If you did not expect this email, ignore it.", "", sentTo].join("\n");
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head><body style="font-family:system-ui,sans-serif;line-height:1.5;color:#111">
<p>${escapeHtml(opening)}</p>
<p>${escapeHtml(action)}</p>
<p><a href="${escapeHtml(e.link)}">${escapeHtml(button)}</a></p>
<p style="color:#555">${escapeHtml(note)}<br>
If you did not expect this email, ignore it.<br>
${escapeHtml(sentTo)}</p>
</body></html>`;
  return { subject, text, html };
}

/** The email for the send_email binding: from (with its display name), to, subject, text and HTML. */
export function toMessage(e: WelcomeEmail) {
  const { subject, text, html } = renderWelcomeEmail(e);
  const name = /^(.*?)\s*</.exec(e.from)?.[1];
  return { from: name ? { name, email: addressOf(e.from) } : addressOf(e.from), to: e.to, subject, text, html };
}
