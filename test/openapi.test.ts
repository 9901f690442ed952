import { describe, expect, it } from "vitest";
import { call } from "./helpers";

describe("GET /openapi.json", () => {
  it("is an OpenAPI 3.1 document listing org create with its responses", async () => {
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    const doc = await res.json<any>();
    expect(doc.openapi).toBe("3.1.0");
    const op = doc.paths["/v1/admin/org/create"].post;
    expect(Object.keys(op.responses).sort()).toEqual(["201", "400", "401", "409", "413", "415", "422", "500"]);
    expect(op.security).toEqual([{ MasterKey_ORG_CREATE: [] }]);
    expect(op.parameters).toContainEqual(expect.objectContaining({ name: "Idempotency-Key", in: "header", required: true }));
    expect(doc.components.securitySchemes.MasterKey_ORG_CREATE).toMatchObject({ type: "apiKey", in: "header", name: "X-API-Key" });
  });
});

describe("unknown routes", () => {
  it("404 NOT_FOUND in the error envelope", async () => {
    const res = await call("/v1/nope");
    expect(res.status).toBe(404);
    const json = await res.json<any>();
    expect(json).toMatchObject({ error: "NOT_FOUND", message: expect.any(String) });
    expect(res.headers.get("x-request-id")).toBe(json.request_id);
  });
});
