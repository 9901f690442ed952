/** @jsxImportSource hono/jsx */
// The owner console's routes. Pages are server-rendered and work without JavaScript. Every POST passes hono/csrf
// (Origin, or Sec-Fetch-Site: same-origin, which browsers send on our own forms even with no-referrer) and the
// session cookie is SameSite=Lax. Key actions run the same statements as the self-serve API (./../org-self-serve/
// actions.ts) under a mark that says "this user owns the org and it is active", with audit actor `user:<id>`, and
// each form carries a one-time id used as the Idempotency-Key: a double submit or a reload mints once.
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { csrf } from "hono/csrf";
import type { Child } from "hono/jsx";
import { AUDIT_EVENT_TYPES, auditFailure, auditStatement } from "../../lib/data/audit";
import { outcomeUnderMark, runIdempotentBatch, type SqlExpression, type SqlResult, sqlText, type StoredResult } from "../../lib/data/idempotency";
import type { AppContext, AppEnv } from "../../lib/http/context";
import { clientIp, rateLimitsOff } from "../../lib/http/rate-limit";
import { currentPepper, mintKey } from "../../lib/keys/keys";
import { keyStatus } from "../../lib/keys/rotation";
import { ulid } from "../../lib/util/ids";
import { isoNow } from "../../lib/util/time";
import { forgetOrg } from "../../verify/verify-key";
import { enqueueOutbox } from "../onboarding/outbox-queue";
import { verifyPassword } from "../onboarding/crypto";
import { claimStatements, type OrgKeyType, revokeStatements, rotateStatements } from "../org-self-serve/actions";
import { deliverEventsAfterResponse } from "../../lib/data/events";
import { listOrgKeys, listOrgKeysStatement, type OrgKeyListRow } from "../org-self-serve/queries";
import { orgChangedBy } from "../orgs/queries";
import { CONSOLE_CSP, CONSOLE_CSS, CONSOLE_JS } from "./assets";
import * as p from "./pages";
import { auditPage, markIfOwnerControls, NO_LIVE_KEYS, type OwnedOrg, ownedOrg, ownedOrgStatement, ownedOrgs, userByEmail } from "./queries";
import { clearSessionCookie, type ConsoleUser, endSessionStatement, requireUser, startSession } from "./session";

type ConsoleEnv = AppEnv & { Variables: { user: ConsoleUser } };
type ConsoleContext = AppContext & { get(key: "user"): ConsoleUser };

export const SIGN_IN_FAILED = "The email or password is not right.";
/** Failed sign-ins answer no sooner than this after the request arrived, whatever the reason. */
export const SIGN_IN_FAILURE_FLOOR_MS = 400;
const RETRY_AFTER = "60";
const AUDIT_PAGE = 50;
const KEYS_SHOWN = 100;
const FORM_ID = /^[0-9A-Za-z_-]{10,80}$/;
const WINDOW_SECONDS: readonly number[] = p.WINDOWS.map((w) => w.seconds);

const SECURITY_HEADERS = {
  "Content-Security-Policy": CONSOLE_CSP,
  "Referrer-Policy": "no-referrer",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Cache-Control": "no-store",
};

const page = (c: AppContext, node: Child, status = 200, headers: Record<string, string> = {}) =>
  c.html(`<!doctype html>${node}`, status as 200, { ...SECURITY_HEADERS, ...headers });

/** The form's fields as text; a body that does not parse as a form (a broken multipart body) has none. */
const formOf = async (c: AppContext) => {
  const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
  const get = (name: string) => (typeof body[name] === "string" ? (body[name] as string) : "");
  return get;
};

/** The per-key limit of the sign-in limiter (per IP, per account): false when over it. */
async function allowed(c: AppContext, ...subjects: string[]) {
  if (rateLimitsOff(c.env)) return true;
  for (const key of subjects) if (!(await c.env.SIGN_IN_RATE_LIMITER.limit({ key })).success) return false;
  return true;
}

/** The answer of a console action, decided at the end of its batch: 200 under the mark, else 409. */
const actionOutcome = (mine: SqlExpression, success: SqlExpression, refusal: string) => outcomeUnderMark(mine, success, { sql: sqlText(refusal), binds: [] });

/**
 * What every key action of the signed-in owner shares: the batch's mark ("this user owns the org and it is
 * active", plus `extra` SQL) and the statements' context, with audit actor user:<id>.
 */
function ownerAction(c: ConsoleContext, org: OwnedOrg, extra = "") {
  const user = c.get("user");
  const db = c.env.DB;
  const requestId = c.get("requestId");
  const mine = orgChangedBy(org.org_id, requestId);
  return {
    user,
    mine,
    mark: markIfOwnerControls(db, org.org_id, user.user_id, requestId, extra),
    action: { db, orgId: org.org_id, requestId, actor: `user:${user.user_id}`, nowMs: Date.now(), mine },
  };
}

/** Runs a console action's batch under its form id; a replay (double submit, reload) returns the stored result. */
async function runAction(
  c: ConsoleContext,
  action: string,
  orgId: string,
  formId: string,
  statements: D1PreparedStatement[],
  result: SqlResult,
  minted: string[],
) {
  const outcome = await runIdempotentBatch(c, statements, {
    endpoint: `console POST /console/orgs/{org_id}/keys/${action} user=${c.get("user").user_id} org=${orgId}`,
    key: formId,
    fingerprint: `${orgId}|${action}`,
    result,
    minted,
  });
  if (outcome.replay)
    return { replayed: true, stored: { status: outcome.replay.status, body: await outcome.replay.json<Record<string, unknown>>() } as StoredResult };
  deliverEventsAfterResponse(c as never);
  return { replayed: false, stored: outcome.stored! };
}

export function createConsole() {
  const r = new Hono<ConsoleEnv>({ strict: false });
  r.onError((err, c) => {
    const status = (err as { status?: number }).status;
    if (status === 403)
      return page(c as never, <p.MessagePage title="Refused" message="This form did not come from this site. Reload the page and try again." />, 403);
    if (status === 413) return page(c as never, <p.MessagePage title="Too large" message="The form is too large." />, 413);
    console.error(JSON.stringify({ level: "error", request_id: c.get("requestId"), error: String(err) }));
    return page(c as never, <p.MessagePage title="Something went wrong" message="Please try again in a moment." />, 500);
  });
  r.use("*", bodyLimit({ maxSize: 16 * 1024 }));
  r.use("*", csrf());

  r.get("/app.css", (c) =>
    c.body(CONSOLE_CSS, 200, { ...SECURITY_HEADERS, "Cache-Control": "public, max-age=300", "Content-Type": "text/css; charset=utf-8" }),
  );
  r.get("/app.js", (c) =>
    c.body(CONSOLE_JS, 200, { ...SECURITY_HEADERS, "Cache-Control": "public, max-age=300", "Content-Type": "text/javascript; charset=utf-8" }),
  );

  r.get("/sign-in", (c) => page(c as never, <p.SignInPage notice={c.req.query("signed_out") !== undefined ? "You are signed out." : undefined} />));

  r.post("/sign-in", async (c) => {
    const started = performance.now();
    const form = await formOf(c as never);
    const email = form("email").trim().slice(0, 254);
    const password = form("password").slice(0, 128);
    const ip = clientIp(c as never);
    if (!(await allowed(c as never, `sign-in:ip:${ip ?? "binding"}`, `sign-in:account:${email.toLowerCase()}`))) {
      await auditFailure(c as never, { event_type: "AUTH_FAIL_RATE_LIMITED_IP", actor: "anonymous", ip, detail: "path=/console/sign-in" }, `${ip}|sign-in`);
      return page(c as never, <p.SignInPage error="Too many attempts. Wait a minute and try again." email={email} />, 429, { "Retry-After": RETRY_AFTER });
    }
    const user = email ? await userByEmail(c.env.DB, email) : null;
    // Always one PBKDF2 derivation (against a fixed salt when there is no account or no password yet): the same time
    // whether or not the account exists.
    const ok = await verifyPassword(password, user?.password_hash ?? null);
    if (!ok || !user) {
      await auditFailure(c as never, { event_type: "CONSOLE_SIGN_IN_FAILED", actor: "anonymous", ip, detail: "reason=credentials" }, ip ?? "binding");
      const wait = SIGN_IN_FAILURE_FLOOR_MS - (performance.now() - started);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      return page(c as never, <p.SignInPage error={SIGN_IN_FAILED} email={email} />, 401);
    }
    const now = isoNow();
    await c.env.DB.batch([
      await startSession(c as never, user.id),
      auditStatement(c.env.DB, { event_type: "CONSOLE_SIGNED_IN", actor: `user:${user.id}`, request_id: c.get("requestId"), ip }, now),
    ]);
    return c.redirect("/console", 303);
  });

  r.get("/forgot", (c) => page(c as never, <p.ForgotPage />));
  r.post("/forgot", async (c) => {
    const form = await formOf(c as never);
    const email = form("email").trim().slice(0, 254);
    const ip = clientIp(c as never);
    if (!(await allowed(c as never, `forgot:ip:${ip ?? "binding"}`))) {
      return page(c as never, <p.ForgotPage error="Too many requests. Wait a minute and try again." />, 429, { "Retry-After": RETRY_AFTER });
    }
    // The same answer, and the same one D1 batch, whether or not the address has an account. Limited like a resent
    // invite: one per 10 minutes and five a day per account.
    const db = c.env.DB;
    const nowMs = Date.now();
    const now = isoNow(nowMs);
    const requestId = c.get("requestId");
    const outboxId = ulid();
    await db.batch([
      db
        .prepare(
          `INSERT INTO invite_resends (user_id, sent_at, request_id)
           SELECT id, ?, ? FROM users
            WHERE lower(email) = lower(?)
              AND NOT EXISTS (SELECT 1 FROM invite_resends r WHERE r.user_id = users.id AND r.sent_at > ?)
              AND (SELECT COUNT(*) FROM invite_resends r WHERE r.user_id = users.id AND r.sent_at > ?) < 5`,
        )
        .bind(now, requestId, email, isoNow(nowMs - 10 * 60_000), isoNow(nowMs - 86_400_000)),
      db
        .prepare(
          `INSERT INTO outbox (id, kind, payload, created_at, updated_at) SELECT ?, 'password_reset', json_object('user_id', user_id, 'org_id', NULL), ?, ? FROM invite_resends WHERE request_id = ?`,
        )
        .bind(outboxId, now, now, requestId),
      db
        .prepare(
          `INSERT INTO audit_log (event_type, actor, org_id, request_id, ip, created_at) SELECT 'PASSWORD_RESET_REQUESTED', 'user:' || user_id, NULL, ?, ?, ? FROM invite_resends WHERE request_id = ?`,
        )
        .bind(requestId, ip, now, requestId),
    ]);
    c.executionCtx.waitUntil(enqueueOutbox(c.env.OUTBOX_QUEUE, [outboxId])); // a message for no row changes nothing
    return page(c as never, <p.ForgotPage sent />);
  });

  r.post("/sign-out", requireUser, async (c) => {
    const user = c.get("user");
    const now = isoNow();
    await c.env.DB.batch([
      endSessionStatement(c.env.DB, user.session_hash, now),
      auditStatement(
        c.env.DB,
        { event_type: "CONSOLE_SIGNED_OUT", actor: `user:${user.user_id}`, request_id: c.get("requestId"), ip: clientIp(c as never) },
        now,
      ),
    ]);
    clearSessionCookie(c as never);
    return c.redirect("/console/sign-in?signed_out", 303);
  });

  r.get("/", requireUser, async (c) => {
    const user = c.get("user");
    const { results } = await ownedOrgs(c.env.DB, user.user_id);
    if (results.length === 1) return c.redirect(`/console/orgs/${results[0].org_id}`, 303);
    return page(c as never, <p.OrgPickerPage user={user} orgs={results} />);
  });

  /** The owned org of the path, or a 404 page (another owner's org is not found either). */
  const notFound = (c: ConsoleContext) =>
    page(c, <p.MessagePage title="Not found" message="No such organization among yours." user={c.get("user")} back="/console" />, 404);
  const withOrg = (handler: (c: ConsoleContext, org: OwnedOrg) => Promise<Response>) => async (c: ConsoleContext) => {
    const org = await ownedOrg(c.env.DB, c.get("user").user_id, c.req.param("orgId") ?? "");
    if (!org) return notFound(c);
    return handler(c, org);
  };

  r.get("/orgs/:orgId", requireUser, withOrg(async (c, org) => page(c, <p.OverviewPage user={c.get("user")} org={org} />)) as never);

  const renderKeys = (c: ConsoleContext, org: OwnedOrg, rows: OrgKeyListRow[], status = 200, messages: { notice?: string; error?: string } = {}) => {
    const now = isoNow();
    const keys = rows.map((k) => ({ ...k, status: keyStatus(k, now) }));
    return page(c, <p.KeysPage user={c.get("user")} org={org} keys={keys} formId={ulid()} {...messages} />, status);
  };
  /** The keys page after an action (the org already read). */
  const keysPage = async (c: ConsoleContext, org: OwnedOrg, status = 200, messages: { notice?: string; error?: string } = {}) =>
    renderKeys(c, org, (await listOrgKeys(c.env.DB, org.org_id, KEYS_SHOWN)).results, status, messages);
  // The org and its keys in one round trip (the keys of an org this user does not own are read, and dropped).
  r.get("/orgs/:orgId/keys", requireUser, async (c) => {
    const orgId = c.req.param("orgId");
    const [owned, keys] = await c.env.DB.batch<unknown>([
      ownedOrgStatement(c.env.DB, c.get("user").user_id, orgId),
      listOrgKeysStatement(c.env.DB, orgId, KEYS_SHOWN),
    ]);
    const org = owned.results[0] as OwnedOrg | undefined;
    if (!org) return notFound(c as never);
    return renderKeys(c as never, org, keys.results as OrgKeyListRow[]);
  });

  const ALREADY = "This form was already submitted: its result was shown then, and a new key is shown only once.";
  const refusal = (org: OwnedOrg) =>
    org.status === "active" ? "The organization changed meanwhile; reload and try again." : "The organization is not active: no key actions.";

  r.post(
    "/orgs/:orgId/keys/create",
    requireUser,
    withOrg(async (c, org) => {
      const formId = (await formOf(c))("form_id");
      if (!FORM_ID.test(formId)) return keysPage(c, org, 400, { error: "The form is out of date; try again." });
      const pepper = await currentPepper(c.env);
      const client = mintKey("ck_live");
      const server = mintKey("sk_live");
      const hashes = (await Promise.all([pepper.hash(client.plaintext), pepper.hash(server.plaintext)])) as [string, string];
      const { user, mine, mark, action } = ownerAction(c, org, NO_LIVE_KEYS);
      const { replayed, stored } = await runAction(
        c,
        "create",
        org.org_id,
        formId,
        [mark, ...claimStatements(action, client, server, hashes, pepper.id)],
        actionOutcome(
          mine,
          { sql: "json(?)", binds: [JSON.stringify({ prefix: client.prefix, server_prefix: server.prefix })] },
          "The organization already has live keys, or is not active.",
        ),
        [client.plaintext, server.plaintext],
      );
      if (replayed) return keysPage(c, org, 200, { notice: ALREADY });
      if (stored.status !== 200) return keysPage(c, org, 409, { error: "The organization already has live keys, or is not active: rotate a key instead." });
      forgetOrg(org.org_id);
      return page(
        c,
        <p.KeysShownPage
          user={user}
          org={org}
          minted={[
            { type: "sk_live", plaintext: server.plaintext },
            { type: "ck_live", plaintext: client.plaintext },
          ]}
        />,
      );
    }) as never,
  );

  r.post(
    "/orgs/:orgId/keys/rotate",
    requireUser,
    withOrg(async (c, org) => {
      const form = await formOf(c);
      const formId = form("form_id");
      const keyType = form("key_type") as OrgKeyType;
      const window = Number(form("window"));
      if (!FORM_ID.test(formId) || !["ck_live", "sk_live"].includes(keyType) || !WINDOW_SECONDS.includes(window)) {
        return keysPage(c, org, 400, { error: "The form is out of date; try again." });
      }
      const pepper = await currentPepper(c.env);
      const key = mintKey(keyType);
      const { user, mine, mark, action } = ownerAction(c, org);
      const { replayed, stored } = await runAction(
        c,
        `rotate-${keyType}`,
        org.org_id,
        formId,
        [mark, ...rotateStatements(action, keyType, window, key, await pepper.hash(key.plaintext), pepper.id, `by=user:${user.user_id}`)],
        actionOutcome(mine, { sql: "json(?)", binds: [JSON.stringify({ prefix: key.prefix })] }, refusal(org)),
        [key.plaintext],
      );
      if (replayed) return keysPage(c, org, 200, { notice: ALREADY });
      if (stored.status !== 200) return keysPage(c, org, 409, { error: refusal(org) });
      forgetOrg(org.org_id);
      const label = p.WINDOWS.find((w) => w.seconds === window)!.label;
      return page(
        c,
        <p.KeysShownPage user={user} org={org} minted={[{ type: keyType, plaintext: key.plaintext }]} note={`The previous key stops working ${label}.`} />,
      );
    }) as never,
  );

  r.get(
    "/orgs/:orgId/keys/revoke",
    requireUser,
    withOrg(async (c, org) => {
      const keyType = c.req.query("key_type") as OrgKeyType;
      if (!["ck_live", "sk_live"].includes(keyType) || org.status !== "active") return keysPage(c, org, 400, { error: "Choose a key to revoke." });
      return page(c, <p.RevokeConfirmPage user={c.get("user")} org={org} keyType={keyType} formId={ulid()} />);
    }) as never,
  );

  r.post(
    "/orgs/:orgId/keys/revoke",
    requireUser,
    withOrg(async (c, org) => {
      const form = await formOf(c);
      const formId = form("form_id");
      const keyType = form("key_type") as OrgKeyType;
      if (!FORM_ID.test(formId) || !["ck_live", "sk_live"].includes(keyType)) return keysPage(c, org, 400, { error: "The form is out of date; try again." });
      const { mine, mark, action } = ownerAction(c, org);
      const revokedCount = {
        sql: "json_object('revoked', (SELECT COUNT(*) FROM api_keys WHERE org_id = ? AND key_type = ? AND revoked_at = ?))",
        binds: [org.org_id, keyType, isoNow(action.nowMs)],
      };
      const { replayed, stored } = await runAction(
        c,
        `revoke-${keyType}`,
        org.org_id,
        formId,
        [mark, ...revokeStatements(action, keyType)],
        actionOutcome(mine, revokedCount, refusal(org)),
        [],
      );
      if (replayed) return keysPage(c, org, 200, { notice: "This revocation was already done." });
      if (stored.status !== 200) return keysPage(c, org, 409, { error: refusal(org) });
      forgetOrg(org.org_id);
      const n = Number(stored.body.revoked ?? 0);
      return keysPage(c, org, 200, {
        notice: n ? `Revoked: the ${keyType === "sk_live" ? "server" : "client"} key no longer works.` : "There was no live key of that type.",
      });
    }) as never,
  );

  r.get(
    "/orgs/:orgId/audit",
    requireUser,
    withOrg(async (c, org) => {
      const requested = c.req.query("event_type") ?? "";
      const eventType = (AUDIT_EVENT_TYPES as readonly string[]).includes(requested) ? requested : undefined;
      const before = Number(c.req.query("before"));
      const { results } = await auditPage(c.env.DB, org.org_id, {
        eventType,
        beforeId: Number.isInteger(before) && before > 0 ? before : undefined,
        limit: AUDIT_PAGE,
      });
      const rows = results.slice(0, AUDIT_PAGE);
      const older =
        results.length > AUDIT_PAGE
          ? `/console/orgs/${org.org_id}/audit?${new URLSearchParams({ ...(eventType ? { event_type: eventType } : {}), before: String(rows.at(-1)!.id) })}`
          : undefined;
      return page(c, <p.AuditPage user={c.get("user")} org={org} rows={rows} eventTypes={AUDIT_EVENT_TYPES} eventType={eventType} older={older} />);
    }) as never,
  );
  return r;
}
