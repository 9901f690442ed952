import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../lib/http/context";
import * as h from "./handler";
import * as r from "./route";

export function registerOrgSelfServe(app: OpenAPIHono<AppEnv>) {
  app.openAPIRegistry.registerComponent("securitySchemes", "OrgApiKey", {
    type: "apiKey",
    in: "header",
    name: "X-API-Key",
    description: "The organization's server key (sk_live_…). A client key (ck_live_…) is publishable and is refused here (403).",
  });
  app.openapi(r.rotateOwnKeyRoute, h.rotateOwnKey);
  app.openapi(r.revokeOwnKeyRoute, h.revokeOwnKey);
  app.openapi(r.auditLogRoute, h.auditLog);
  app.openapi(r.listKeysRoute, h.listKeys);
}
