import type { RouteHandler } from "@hono/zod-openapi";
import { auditStatement } from "../../lib/audit";
import { type AppEnv, envelope } from "../../lib/context";
import { ApiError } from "../../lib/errors";
import { ulid } from "../../lib/ids";
import { fingerprint, runIdempotentBatch } from "../../lib/idempotency";
import { currentPepper, KEY_TYPES, mintKey } from "../../lib/keys";
import { forgetPartner } from "../../lib/partner-auth";
import { isoNow } from "../../lib/time";
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
      auditStatement(db, { event_type: "PARTNER_CREATED", actor: ACTOR, key_prefix: KEY_TYPES.kvqp + key.prefix, request_id: c.get("requestId"), detail: `partner_id=${partnerId}` }, now),
    ],
    { endpoint: "POST /v1/admin/partners", key: c.req.valid("header")["Idempotency-Key"], fingerprint: await fingerprint({ name }), status: 201, response: stored, minted: [key.plaintext] },
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

export const rotatePartnerKey: RouteHandler<typeof rotatePartnerKeyRoute, AppEnv> = async (c) => {
  const { partner_id: partnerId } = c.req.valid("param");
  const pepper = await currentPepper(c.env);
  const db = c.env.DB;
  const key = mintKey("kvqp");
  const now = isoNow();
  const stored = { rotated: true, partner_id: partnerId, prefix: key.prefix, rotated_at: now };
  const active = q.activePartnerExists(partnerId);
  const outcome = await runIdempotentBatch(
    c,
    [
      q.revokePartnerKeys(db, partnerId, now),
      q.insertPartnerKey(db, partnerId, await pepper.hash(key.plaintext), pepper.id, key.prefix, now),
      auditStatement(db, { event_type: "PARTNER_KEY_ROTATED", actor: ACTOR, key_prefix: KEY_TYPES.kvqp + key.prefix, request_id: c.get("requestId"), detail: `partner_id=${partnerId}` }, now, active),
      q.selectPartnerState(db, partnerId),
    ],
    { endpoint: "POST /v1/admin/partners/{partner_id}/rotate-key", key: c.req.valid("header")["Idempotency-Key"], fingerprint: partnerId, status: 200, response: stored, guard: active, minted: [key.plaintext] },
    envelope(c),
  );
  if (outcome.replay) return outcome.replay as never;
  forgetPartner(partnerId);
  const state = outcome.results[3].results[0] as { active: number } | undefined;
  if (!state) throw new ApiError(404, "NOT_FOUND", "No such partner.");
  if (!state.active) throw new ApiError(409, "PARTNER_INACTIVE", "The partner is deactivated; it gets no new key.");
  return c.json({ ...stored, partner_key: key.plaintext, warning: KEY_SHOWN_ONCE_WARNING, ...envelope(c) }, 200);
};

export const deactivatePartner: RouteHandler<typeof deactivatePartnerRoute, AppEnv> = async (c) => {
  const { partner_id: partnerId } = c.req.valid("param");
  const db = c.env.DB;
  const now = isoNow();
  const outcome = await runIdempotentBatch(
    c,
    [
      q.deactivatePartner(db, partnerId, now),
      auditStatement(db, { event_type: "PARTNER_DEACTIVATED", actor: ACTOR, request_id: c.get("requestId"), detail: `partner_id=${partnerId}` }, now, { sql: "changes() = 1", binds: [] }),
      q.selectPartnerState(db, partnerId),
    ],
    {
      endpoint: "POST /v1/admin/partners/{partner_id}/deactivate",
      key: c.req.valid("header")["Idempotency-Key"],
      fingerprint: partnerId,
      status: 200,
      guard: q.partnerExists(partnerId),
      response: {
        sql: `SELECT json_object('deactivated', json('true'), 'partner_id', partner_id, 'deactivated_at', updated_at) FROM partners WHERE partner_id = ?`,
        binds: [partnerId],
      },
    },
    envelope(c),
  );
  if (outcome.replay) return outcome.replay as never;
  forgetPartner(partnerId);
  const state = outcome.results[2].results[0] as { updated_at: string } | undefined;
  if (!state) throw new ApiError(404, "NOT_FOUND", "No such partner.");
  return c.json({ deactivated: true as const, partner_id: partnerId, deactivated_at: state.updated_at, ...envelope(c) }, 200);
};
