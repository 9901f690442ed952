// Organization slugs for partner orgs: lower-case ASCII words joined by hyphens. De-duplication (acme-corp,
// acme-corp-2, …) happens inside the INSERT (see queries.ts), where D1 serializes it.

const MAX_SLUG_LENGTH = 50;
// A personal mailbox's domain says nothing about the business; its local part says more.
const WEBMAIL = new Set([
  "gmail",
  "googlemail",
  "outlook",
  "hotmail",
  "live",
  "msn",
  "yahoo",
  "icloud",
  "me",
  "mac",
  "aol",
  "proton",
  "protonmail",
  "pm",
  "gmx",
  "mail",
  "yandex",
  "zoho",
  "fastmail",
  "hey",
  "qq",
  "163",
]);

export function slugify(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/\p{M}/gu, "") // é → e
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, MAX_SLUG_LENGTH)
    .replace(/-+$/, "");
}

/** From the business name; else the email's domain (acme.example.com → acme-example); else its local part. */
export function baseSlug(businessName: string | undefined, email: string): string {
  const fromName = businessName ? slugify(businessName) : "";
  if (fromName) return fromName;
  const at = email.lastIndexOf("@");
  const local = email.slice(0, at);
  const domain = email.slice(at + 1).toLowerCase();
  const fromDomain = WEBMAIL.has(domain.split(".")[0]) ? "" : slugify(domain.replace(/\.[^.]+$/, ""));
  return fromDomain || slugify(local) || "org";
}
