import type { RouteHandler } from "@hono/zod-openapi";
import { auditStatement } from "../../lib/data/audit";
import { type AppEnv, envelope } from "../../lib/http/context";
import { ulid } from "../../lib/util/ids";
import { answer, fingerprint, runIdempotentBatch, type SqlExpression, type SqlResult, sqlErrorBody, sqlText } from "../../lib/data/idempotency";
import { currentPepper, KEY_TYPES, mintKey } from "../../lib/keys/keys";
import { forgetPartner } from "../../lib/auth/partner-auth";
import { retireKeys } from "../../lib/keys/rotation";
import { isoNow } from "../../lib/util/time";
import { KEY_SHOWN_ONCE_WARNING } from "../orgs/model";
import * as q from "./queries";
import type { createPartnerRoute, deactivatePartnerRoute, listPartnersRoute, rotatePartnerKeyRoute } from "./route";

const ACTOR = "master:PARTNER_ADMIN";

export const createPartner: RouteHandler<typeof createPartnerRoute, AppEnv> = async (c) => {
  const { name } = c.req.valid("json");
  const pepper = await currentPepper(c.env);
  const db = c.env.DB;
  const partnerId = `ptn_${ulid()}`;
  const key = mintKey("kvqp");
  const now = isoNow();
  const stored = { partner_id: partnerId, name, prefix: key.prefix, created_at: now };
  const outcome = await runIdempotentBatch(
    c,
    [
      q.insertPartner(db, partnerId, name, now),
      q.insertPartnerKey(db, partnerId, await pepper.hash(key.plaintext), pepper.id, key.prefix, now),
      auditStatement(
        db,
        {
          event_type: "PARTNER_CREATED",
          actor: ACTOR,
          key_prefix: KEY_TYPES.kvqp + key.prefix,
          request_id: c.get("requestId"),
          detail: `partner_id=${partnerId}`,
        },
        now,
      ),
    ],
    {
      endpoint: "POST /v1/admin/partners",
      key: c.req.valid("header")["Idempotency-Key"],
      fingerprint: await fingerprint({ name }),
      result: { status: 201, body: stored },
      minted: [key.plaintext],
    },
    envelope(c),
  );
  if (outcome.replay) return outcome.replay as never;
  return c.json({ ...stored, partner_key: key.plaintext, warning: KEY_SHOWN_ONCE_WARNING, ...envelope(c) }, 201);
};

export const listPartners: RouteHandler<typeof listPartnersRoute, AppEnv> = async (c) => {
  const { results } = await q.listPartners(c.env.DB);
  const partners = results.map((p) => ({ ...p, active: p.active === 1 }));
  return c.json({ results: partners, count: partners.length, ...envelope(c) }, 200);
};

/**
 * The stored result of a partner change, decided at the end of its batch: 404 without such a partner, 409
 * PARTNER_INACTIVE when `activeRequired` and it is deactivated, else 200 with `success`.
 */
const partnerResult = (partnerId: string, success: SqlExpression, activeRequired: boolean): SqlResult => ({
  select: `SELECT status,
      CASE status
        WHEN 200 THEN ${success.sql}
        WHEN 404 THEN ${sqlErrorBody("NOT_FOUND", sqlText("No such partner."))}
        ELSE ${sqlErrorBody("PARTNER_INACTIVE", sqlText("The partner is deactivated; it gets no new key."))}
      END AS body
    FROM (SELECT CASE WHEN p.partner_id IS NULL THEN 404 WHEN ${activeRequired ? "p.active = 0" : "0"} THEN 409 ELSE 200 END AS status,
                 p.partner_id, p.updated_at
            FROM (SELECT 1) LEFT JOIN partners p ON p.partner_id = ?)`,
  binds: [...success.binds, partnerId],
});

export const rotatePartnerKey: RouteHandler<typeof rotatePartnerKeyRoute, AppEnv> = async (c) => {
  const { partner_id: partnerId } = c.req.valid("param");
  const window = c.req.valid("json").expire_previous_in_seconds ?? 0;
  const pepper = await currentPepper(c.env);
  const db = c.env.DB;
  const key = mintKey("kvqp");
  const nowMs = Date.now();
  const now = isoNow(nowMs);
  const stored = { rotated: true, partner_id: partnerId, prefix: key.prefix, rotated_at: now };
  const outcome = await runIdempotentBatch(
    c,
    [
      ...retireKeys(db, { partner_id: partnerId }, nowMs, window, q.activePartnerExists(partnerId)),
      q.insertPartnerKey(db, partnerId, await pepper.hash(key.plaintext), pepper.id, key.prefix, now),
      auditStatement(
        db,
        {
          event_type: "PARTNER_KEY_ROTATED",
          actor: ACTOR,
          key_prefix: KEY_TYPES.kvqp + key.prefix,
          request_id: c.get("requestId"),
          detail: `partner_id=${partnerId}${window ? ` expire_previous_in_seconds=${window}` : ""}`,
        },
        now,
        q.activePartnerExists(partnerId),
      ),
    ],
    {
      endpoint: "POST /v1/admin/partners/{partner_id}/rotate-key",
      key: c.req.valid("header")["Idempotency-Key"],
      fingerprint: await fingerprint({ partner_id: partnerId, expire_previous_in_seconds: window }),
      result: partnerResult(partnerId, { sql: "json(?)", binds: [JSON.stringify(stored)] }, true),
      minted: [key.plaintext],
    },
    envelope(c),
  );
  if (outcome.replay) return outcome.replay as never;
  forgetPartner(partnerId);
  const minted = outcome.stored!.status === 200 ? { partner_key: key.plaintext, warning: KEY_SHOWN_ONCE_WARNING } : {};
  return answer(c, outcome.stored!, { ...minted, ...envelope(c) }) as never;
};

export const deactivatePartner: RouteHandler<typeof deactivatePartnerRoute, AppEnv> = async (c) => {
  const { partner_id: partnerId } = c.req.valid("param");
  const db = c.env.DB;
  const now = isoNow();
  const outcome = await runIdempotentBatch(
    c,
    [
      q.deactivatePartner(db, partnerId, now),
      auditStatement(db, { event_type: "PARTNER_DEACTIVATED", actor: ACTOR, request_id: c.get("requestId"), detail: `partner_id=${partnerId}` }, now, {
        sql: "changes() = 1",
        binds: [],
      }),
    ],
    {
      endpoint: "POST /v1/admin/partners/{partner_id}/deactivate",
      key: c.req.valid("header")["Idempotency-Key"],
      fingerprint: partnerId,
      // A repeat on a deactivated partner is a no-op 200 with the original time.
      result: partnerResult(
        partnerId,
        { sql: "json_object('deactivated', json('true'), 'partner_id', partner_id, 'deactivated_at', updated_at)", binds: [] },
        false,
      ),
    },
    envelope(c),
  );
  if (outcome.replay) return outcome.replay as never;
  forgetPartner(partnerId);
  return answer(c, outcome.stored!, envelope(c)) as never;
};
