// What an organization is, shared by every feature that creates or reads one.
import { z } from "@hono/zod-openapi";

export const DOMAINS = ["healthcare", "aviation", "financial", "legal", "pharmaceutical", "general"] as const;
export const TIERS = ["starter", "standard", "enterprise"] as const;
export type Tier = (typeof TIERS)[number];

/** Interactions per rolling 30 days. */
export const TIER_LIMITS: Record<Tier, number> = { starter: 10_000, standard: 100_000, enterprise: 1_000_000 };

export const ORG_ID_PATTERN = /^org_[a-z0-9_]{3,60}$/;

export const KEY_SHOWN_ONCE_WARNING = "This API key is shown ONCE. Store it securely. It cannot be retrieved later.";

const MAX_ORIGINS = 50;
/** C0 and C1 control characters. */
export const CONTROL_CHARS = /\p{Cc}/u;
/**
 * Invisible format characters (Unicode Cf: bidi overrides and isolates, zero-width space, BOM, soft hyphen…) that let
 * a name look like another or reorder the text around it. ZWNJ and ZWJ stay allowed: Persian and Indic scripts and
 * emoji sequences need them.
 */
export const INVISIBLE_FORMAT_CHARS = /(?![\u200c\u200d])\p{Cf}/u;
export const INVISIBLE_FORMAT_MESSAGE = "Must not contain invisible format characters (bidi controls, zero-width spaces and the like).";

/** An exact browser origin: `https://host[:port]`, or `http://localhost[:port]`; lower-case, no path or slash. */
export function isExactOrigin(candidate: string): boolean {
  let url: URL;
  try {
    url = new URL(candidate);
  } catch {
    return false;
  }
  const schemeOk = url.protocol === "https:" || (url.protocol === "http:" && url.hostname === "localhost");
  return schemeOk && url.origin === candidate;
}

const shown = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);

/** One origin, several separated by commas or spaces, or an array of them; normalised to a de-duplicated list. */
export const AllowedOrigins = z
  .union([z.string(), z.array(z.string())], { error: "Must be an origin string or an array of origin strings." })
  .transform((value, ctx) => {
    const list = (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(/[\s,]+/)).filter(Boolean);
    if (list.length === 0) ctx.addIssue({ code: "custom", message: "At least one origin is required." });
    if (list.length > MAX_ORIGINS) ctx.addIssue({ code: "custom", message: `At most ${MAX_ORIGINS} origins.` });
    for (const origin of list) {
      if (!isExactOrigin(origin)) {
        ctx.addIssue({
          code: "custom",
          message: `${shown(origin)} is not an exact origin: use https://host[:port] or http://localhost[:port], lower-case, with no path or trailing slash.`,
        });
      }
    }
    return [...new Set(list)];
  })
  .openapi({
    description: "One exact origin, several separated by commas or spaces, or an array of them.",
    example: "https://acme.example.com",
  });

export const OrgName = z
  .string({ error: "Must be a string." })
  .trim()
  .min(1, "Must not be empty.")
  .max(200, "Must be at most 200 characters.")
  .refine((s) => !CONTROL_CHARS.test(s), "Must not contain control characters.")
  .refine((s) => !INVISIBLE_FORMAT_CHARS.test(s), INVISIBLE_FORMAT_MESSAGE);
