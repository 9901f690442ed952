import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../lib/http/context";
import { validationHook } from "../../lib/http/errors";
import * as h from "./handler";
import * as r from "./route";

/** The partner API documents 400 for every invalid request, so its routes use a 400 validation hook. */
export function registerPartnerOrgs(app: OpenAPIHono<AppEnv>) {
  app.openAPIRegistry.registerComponent("securitySchemes", "partnerKeyAuth", {
    type: "apiKey",
    in: "header",
    name: "X-Kelviq-Partner-Key",
    description: "Your partner key (kvqp_…), issued by the operator.",
  });
  const hook = validationHook(400);
  app.openapi(r.provisionRoute, h.provision, hook);
  app.openapi(r.listRoute, h.list, hook);
  app.openapi(r.getByExternalIdRoute, h.getByExternalId, hook);
  app.openapi(r.getByIdentifierRoute, h.getByIdentifier, hook);
  app.openapi(r.rotateKeysRoute, h.rotateKeys, hook);
}
