import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../lib/http/context";
import { orgCreateHandler } from "./handler";
import { orgCreateRoute } from "./route";

export const registerAdminOrgCreate = (app: OpenAPIHono<AppEnv>) => app.openapi(orgCreateRoute, orgCreateHandler);
