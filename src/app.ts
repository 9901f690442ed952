import { OpenAPIHono } from "@hono/zod-openapi";
import pkg from "../package.json";
import type { AppEnv } from "./lib/http/context";
import { onError, onNotFound, validationHook } from "./lib/http/errors";
import { registerSecuritySchemes } from "./lib/http/openapi";
import { ipRateLimit } from "./lib/http/rate-limit";
import { requestId } from "./lib/http/request-id";
import { registerAdminOrgCreate } from "./features/admin-org-create";
import { createConsole } from "./features/console/handler";
import { registerAdminOrgLifecycle } from "./features/admin-org-lifecycle";
import { registerAdminPartners } from "./features/admin-partners";
import { registerHealth } from "./features/health";
import { registerLeakedKeys } from "./features/leaked-keys";
import { registerOnboarding } from "./features/onboarding";
import { registerOrgSelfServe } from "./features/org-self-serve";
import { registerPartnerOrgs } from "./features/partner-orgs";
import { registerWebhooks } from "./features/webhooks";

export const OPENAPI_CONFIG = {
  openapi: "3.1.0",
  info: {
    title: "Organization and API-key authority",
    version: pkg.version,
    description:
      "Provisions organizations, mints their API keys (shown once, stored as peppered hashes), and verifies, " +
      "rotates, suspends and revokes them. Every response carries `X-Request-Id`; errors use one envelope.",
  },
};

export function createApp() {
  // strict: false makes a trailing slash optional on every route (the partner API documents paths with one).
  const app = new OpenAPIHono<AppEnv>({ strict: false, defaultHook: validationHook(422) });
  app.use("*", requestId, ipRateLimit);
  app.onError(onError);
  app.notFound(onNotFound);
  registerSecuritySchemes(app);

  registerHealth(app);
  registerAdminOrgCreate(app);
  registerAdminOrgLifecycle(app);
  registerAdminPartners(app);
  registerPartnerOrgs(app);
  registerOrgSelfServe(app);
  registerOnboarding(app);
  registerLeakedKeys(app);
  registerWebhooks(app);
  // The owner console: server-rendered pages, not part of the API (nor of its OpenAPI document).
  app.route("/console", createConsole() as never);

  // The server is the origin the document was fetched from: /docs' "Try it out" calls this very server, on any port.
  app.doc31("/openapi.json", (c) => ({ ...OPENAPI_CONFIG, servers: [{ url: new URL(c.req.url).origin, description: "this server" }] }));
  return app;
}

/** The one app of this Worker: the fetch handler and the billing entrypoint both run it. */
export const app = createApp();
