import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../lib/http/context";
import { transitionHandler, usageHandler, usageListHandler } from "./handler";
import { transitionRoute, usageListRoute, usageRoute } from "./route";
import { TRANSITIONS } from "./transitions";

export function registerAdminOrgLifecycle(app: OpenAPIHono<AppEnv>) {
  for (const t of TRANSITIONS) app.openapi(transitionRoute(t), transitionHandler(t) as never);
  app.openapi(usageListRoute, usageListHandler as never);
  app.openapi(usageRoute, usageHandler as never);
}
