import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./context";
import { newRequestId } from "../util/ids";

/** Every request gets its own `req_<ULID>` (an incoming X-Request-Id is not trusted), echoed in X-Request-Id. */
export const requestId: MiddlewareHandler<AppEnv> = async (c, next) => {
  const id = newRequestId();
  c.set("requestId", id);
  await next();
  c.res.headers.set("X-Request-Id", id);
};
