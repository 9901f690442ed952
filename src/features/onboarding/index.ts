import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../lib/http/context";
import { validationHook } from "../../lib/http/errors";
import * as h from "./handler";
import * as r from "./route";

export function registerOnboarding(app: OpenAPIHono<AppEnv>) {
  const hook = validationHook(400);
  app.openapi(r.checkTokenRoute, h.checkToken, hook);
  app.openapi(r.setPasswordRoute, h.setPassword, hook);
  app.openapi(r.resendInviteRoute, h.resendInvite, hook);
  app.openapi(r.pageRoute, h.page as never);
  app.get("/set-password/app.js", h.pageScript);
  app.get("/set-password/app.css", h.pageStyles);
}
