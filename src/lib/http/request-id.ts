import type { MiddlewareHandler } from "hono";
import { wakeAfterResponse } from "../data/events";
import type { AppEnv } from "./context";
import { newRequestId } from "../util/ids";

/**
 * Every request gets its own `req_<ULID>` (an incoming X-Request-Id is not trusted), echoed in X-Request-Id. After
 * the response, a request that wrote events wakes the webhook consumer (off the request path). One middleware for
 * both: each layer of middleware costs every request.
 */
export const requestId: MiddlewareHandler<AppEnv> = async (c, next) => {
  const id = newRequestId();
  c.set("requestId", id);
  await next();
  c.res.headers.set("X-Request-Id", id);
  if (c.get("eventsWritten")) {
    wakeAfterResponse(c.env, c.executionCtx, (err) =>
      console.error(JSON.stringify({ level: "error", request_id: id, event: "webhook_wake_failed", error: String(err) })),
    );
  }
};
