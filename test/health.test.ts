import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("GET /", () => {
  it("answers 200 without auth with the service name and version", async () => {
    const res = await exports.default.fetch("http://x/");
    expect(res.status).toBe(200);
    const body = await res.json<any>();
    expect(body).toMatchObject({ service: "org-key-authority", status: "ok" });
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.request_id).toMatch(/^req_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(res.headers.get("x-request-id")).toBe(body.request_id);
  });
});
