import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { auditFailure } from "../../lib/data/audit";
import type { AppEnv } from "../../lib/http/context";
import { ApiError, errorResponse, unauthorized } from "../../lib/http/errors";
import { jsonBody, parseJson } from "../../lib/http/json-body";
import { errorResponses } from "../../lib/http/openapi";
import { clientIp, rateLimitsOff } from "../../lib/http/rate-limit";
import { DEFAULT_KEYS_URL, verifyGithubSignature } from "./github-keys";

const tags = ["Leaked keys"];
/** GitHub sends up to 1,000 matches in one report; a batch of that size is well under this. */
export const MAX_REPORT_BYTES = 512 * 1024;
export const MAX_POSSESSION_KEYS = 100;

/**
 * The raw body is what GitHub signed: read it first (Hono keeps it for the validator after), verify the signature
 * against a current GitHub key, or the uniform 401 (audited).
 */
const githubSignature: MiddlewareHandler<AppEnv> = async (c, next) => {
  const body = await c.req.text();
  let ok: boolean;
  try {
    ok = await verifyGithubSignature(
      c.env.GITHUB_SECRET_SCANNING_KEYS_URL || DEFAULT_KEYS_URL,
      c.req.header("github-public-key-identifier"),
      c.req.header("github-public-key-signature"),
      body,
    );
  } catch {
    // GitHub's key list could not be fetched: a 5xx, so GitHub sends the report again (a 401 would drop it).
    throw new ApiError(500, "INTERNAL", "The secret scanning signing keys could not be fetched; retry.");
  }
  if (!ok) {
    const ip = clientIp(c);
    await auditFailure(c, { event_type: "AUTH_FAIL_GITHUB_SIGNATURE", actor: "anonymous", ip, detail: "reason=signature" }, ip ?? "binding");
    throw unauthorized();
  }
  await next();
};

const reportLimit = bodyLimit({
  maxSize: MAX_REPORT_BYTES,
  onError: (c) => errorResponse(c as never, new ApiError(413, "PAYLOAD_TOO_LARGE", `The body must be at most ${MAX_REPORT_BYTES} bytes.`)),
});

export const GithubReport = z
  .array(
    z.object({
      token: z.string().max(1000).openapi({ example: "sk_live_3H8J2K5M_7N9P1Q4R6S8T0V2W4XJ5KD7F2T096QQ" }),
      type: z.string().max(200).optional(),
      url: z
        .string()
        .max(2000)
        .optional()
        .openapi({ example: "https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002/foo/bar.txt" }),
      source: z.string().max(100).optional(),
    }),
  )
  .max(1000)
  .openapi("GithubSecretScanningReport");

export const githubReportRoute = createRoute({
  operationId: "reportGithubSecretScanning",
  method: "post",
  path: "/v1/secret-scanning/github",
  tags,
  summary: "GitHub secret scanning: a signed report of our keys found in public; secret keys are revoked at once",
  description:
    "GitHub's partner format: a JSON array of `{token, type, url, source}`, signed with ECDSA P-256 over the raw body " +
    "(`Github-Public-Key-Identifier`, `Github-Public-Key-Signature`), checked against GitHub's current keys. A live " +
    "server or partner key is revoked at once and its owner told (without the key); a client key is audited. The " +
    "answer labels each token `true_positive` (one of our keys) or `false_positive`, by the SHA-256 of the token.",
  security: [{ GithubSecretScanning: [] }],
  middleware: [reportLimit, githubSignature, parseJson] as const,
  request: { body: { required: true, content: { "application/json": { schema: GithubReport } } } },
  responses: {
    200: {
      description: "One label per token.",
      content: {
        "application/json": {
          schema: z.array(
            z.object({
              token_hash: z.string().openapi({ description: "SHA-256 of the token, hex." }),
              token_type: z.string(),
              label: z.enum(["true_positive", "false_positive"]),
            }),
          ),
        },
      },
    },
    ...errorResponses([400, 401, 413, 415, 429, 500], { 500: "INTERNAL: GitHub's signing keys could not be fetched (GitHub retries)" }),
  },
});

/** Per client IP, on top of the IP limit every route has: a flood of guesses is cut short. */
const possessionLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!rateLimitsOff(c.env) && !(await c.env.SIGN_IN_RATE_LIMITER.limit({ key: `revoke-leaked:ip:${clientIp(c) ?? "binding"}` })).success) {
    throw new ApiError(429, "RATE_LIMITED", "Too many requests; retry later.", undefined, { "Retry-After": "60" });
  }
  await next();
};

export const PossessionReport = z
  .object({
    keys: z
      .array(z.string({ error: "Each key must be a string." }).max(200, "A key is at most 200 characters."), { error: "Must be an array of keys." })
      .min(1, "At least one key.")
      .max(MAX_POSSESSION_KEYS, `At most ${MAX_POSSESSION_KEYS} keys.`)
      .openapi({ example: ["sk_live_3H8J2K5M_7N9P1Q4R6S8T0V2W4XJ5KD7F2T096QQ"] }),
  })
  .openapi("RevokeLeakedRequest");

export const revokeLeakedRoute = createRoute({
  operationId: "revokeLeakedKeys",
  method: "post",
  path: "/v1/keys/revoke-leaked",
  tags,
  summary: "Revoke leaked keys by possession: whoever holds a secret key may destroy it",
  description:
    "No credential but the keys themselves (at most 100). Every live server or partner key among them is revoked at " +
    "once and its owner told; a client key (publishable) is audited only. The answer is always the same, 202 with " +
    "the number of keys received: it never tells which ones existed. Limited per client IP (10 a minute).",
  middleware: [possessionLimit, ...jsonBody] as const,
  request: { body: { required: true, content: { "application/json": { schema: PossessionReport } } } },
  responses: {
    202: {
      description: "Received.",
      content: { "application/json": { schema: z.object({ received: z.number().int(), request_id: z.string(), timestamp: z.string() }) } },
    },
    ...errorResponses([400, 413, 415, 422, 429]),
  },
});
