import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import pkg from "../../../package.json";
import { type AppEnv, envelope } from "../../lib/http/context";
import { Envelope } from "../../lib/http/openapi";

const healthRoute = createRoute({
  operationId: "getHealth",
  method: "get",
  path: "/",
  tags: ["Service"],
  summary: "Health: service name and version (no auth)",
  responses: {
    200: {
      description: "The service is up.",
      content: {
        "application/json": {
          schema: z.object({ service: z.string(), version: z.string(), status: z.literal("ok"), ...Envelope }),
        },
      },
    },
  },
});

export const registerHealth = (app: OpenAPIHono<AppEnv>) =>
  app.openapi(healthRoute, (c) => c.json({ service: c.env.SERVICE_NAME, version: pkg.version, status: "ok" as const, ...envelope(c) }, 200));
