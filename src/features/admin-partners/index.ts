import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../lib/http/context";
import * as h from "./handler";
import * as r from "./route";

export function registerAdminPartners(app: OpenAPIHono<AppEnv>) {
  app.openapi(r.createPartnerRoute, h.createPartner);
  app.openapi(r.listPartnersRoute, h.listPartners);
  app.openapi(r.rotatePartnerKeyRoute, h.rotatePartnerKey);
  app.openapi(r.deactivatePartnerRoute, h.deactivatePartner);
}
