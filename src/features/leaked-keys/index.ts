import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../lib/http/context";
import { envelope } from "../../lib/http/context";
import { sha256Hex } from "../../lib/keys/keys";
import { validationHook } from "../../lib/http/errors";
import { handleExposure } from "./exposure";
import { githubReportRoute, revokeLeakedRoute } from "./route";

export function registerLeakedKeys(app: OpenAPIHono<AppEnv>) {
  app.openAPIRegistry.registerComponent("securitySchemes", "GithubSecretScanning", {
    type: "apiKey",
    in: "header",
    name: "Github-Public-Key-Signature",
    description:
      "GitHub's ECDSA P-256 signature (base64 DER) of the raw body, by the key named in Github-Public-Key-Identifier: one of GitHub's current secret scanning keys.",
  });
  app.openapi(
    githubReportRoute,
    async (c) => {
      const report = c.req.valid("json");
      const ours = await handleExposure(
        c,
        report.map((r) => ({ token: r.token, url: r.url })),
        "github",
      );
      const labels = await Promise.all(
        report.map(async (r, i) => ({
          token_hash: await sha256Hex(r.token),
          token_type: r.type ?? "",
          label: ours[i] ? ("true_positive" as const) : ("false_positive" as const),
        })),
      );
      return c.json(labels, 200);
    },
    validationHook(400),
  );
  app.openapi(revokeLeakedRoute, async (c) => {
    const { keys } = c.req.valid("json");
    await handleExposure(
      c,
      keys.map((token) => ({ token })),
      "report",
    );
    return c.json({ received: keys.length, ...envelope(c) }, 202);
  });
}
