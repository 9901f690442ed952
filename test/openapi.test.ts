import { exports } from "cloudflare:workers";
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

describe("every route in the document", () => {
  it("has its auth header, error responses with codes, and examples", async () => {
    const doc = await (await call("/openapi.json")).json<any>();
    // No credential, by design: the set-password token is in the body, and revoke-leaked's credential is the keys.
    const PUBLIC = new Set([
      "GET /",
      "GET /set-password",
      "POST /api/v1/auth/set-password/check",
      "POST /api/v1/auth/set-password",
      "POST /v1/keys/revoke-leaked",
    ]);
    let operations = 0;
    for (const [path, methods] of Object.entries<any>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(methods)) {
        operations++;
        const key = `${method.toUpperCase()} ${path}`;
        if (!PUBLIC.has(key)) {
          expect(op.security?.length, key).toBeGreaterThan(0);
          const scheme = doc.components.securitySchemes[Object.keys(op.security[0])[0]];
          expect(scheme, key).toMatchObject({ type: "apiKey", in: "header" });
          expect(Object.keys(op.responses), key).toContain("401");
        }
        if (key !== "GET /" && key !== "GET /set-password") {
          const errors = Object.keys(op.responses).filter((s) => s >= "400");
          expect(errors.length, key).toBeGreaterThan(0);
          for (const s of errors) expect(op.responses[s].content["application/json"].schema.$ref, `${key} ${s}`).toBe("#/components/schemas/Error");
          // Each error's example is that status's body (a 401 shows the 401 body, not a validation error).
          if (op.responses["401"])
            expect(op.responses["401"].content["application/json"].example, key).toMatchObject({
              error: "UNAUTHORIZED",
              message: "Missing or invalid credentials.",
            });
          if (op.responses["422"]) expect(op.responses["422"].content["application/json"].example.error, key).toBe("VALIDATION_FAILED");
        }
        if (op.requestBody) {
          const schema = op.requestBody.content["application/json"].schema;
          const resolved = schema.$ref ? doc.components.schemas[schema.$ref.split("/").pop()] : schema;
          expect(JSON.stringify(resolved), key).toMatch(/"example/);
        }
      }
    }
    expect(operations).toBe(45);
  });

  it("names every operation (a unique operationId) and uses ids an id parser accepts (ULIDs in Crockford base32)", async () => {
    const doc = await (await call("/openapi.json")).json<any>();
    const ids = Object.values<any>(doc.paths).flatMap((methods) => Object.values<any>(methods).map((op) => op.operationId));
    expect(
      ids.every((id) => typeof id === "string" && /^[a-z][A-Za-z0-9]+$/.test(id)),
      JSON.stringify(ids),
    ).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const text = JSON.stringify(doc);
    for (const [, id] of text.matchAll(/"(?:req|ptn|whep)_([0-9A-Za-z]{26})"/g)) expect(id, id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
  });
});

describe("any port", () => {
  it("the document's server is the origin it was fetched from (so /docs' Try it out calls this server)", async () => {
    for (const origin of ["http://127.0.0.1:9123", "http://localhost:8787", "https://keys.example.com"]) {
      const doc = await (await exports.default.fetch(new Request(`${origin}/openapi.json`))).json<any>();
      expect(doc.servers).toEqual([{ url: origin, description: "this server" }]);
    }
  });
});
