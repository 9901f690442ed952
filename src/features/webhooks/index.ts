import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../lib/http/context";
import { validationHook } from "../../lib/http/errors";
import { webhookHandlers } from "./handler";
import { type OwnerType, SURFACES, webhookRoutes } from "./route";

/** The same eight routes for partners and for orgs; each surface keeps its own validation status (400 or 422). */
export function registerWebhooks(app: OpenAPIHono<AppEnv>) {
  for (const owner of ["partner", "org"] as OwnerType[]) {
    const routes = webhookRoutes(owner);
    const h = webhookHandlers(owner);
    const hook = validationHook(SURFACES[owner].validation);
    app.openapi(routes.create, h.create as never, hook);
    app.openapi(routes.list, h.list as never, hook);
    app.openapi(routes.get, h.get as never, hook);
    app.openapi(routes.remove, h.remove as never, hook);
    app.openapi(routes.rotateSecret, h.rotateSecret as never, hook);
    app.openapi(routes.test, h.test as never, hook);
    app.openapi(routes.attempts, h.attempts as never, hook);
    app.openapi(routes.replay, h.replay as never, hook);
  }
}
