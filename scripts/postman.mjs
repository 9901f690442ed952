// Generates the Postman collection and environment from the service's OpenAPI document.
//   npm run postman            writes postman/collection.json and postman/environment.json
//   npm run postman -- --check fails if the committed files are not what the document generates (CI runs this)
// The document comes from the app itself (src/app.ts bundled for Node by esbuild), never from a running server.
// Folders follow the document's tags; requests run in FLOW order so a newman run is one coherent story; each
// request tests its documented status and the required fields of its documented response.
import { readFileSync, writeFileSync } from "node:fs";
import { openapiDocument } from "./openapi-document.mjs";

const check = process.argv.includes("--check");

const FOLDERS = [
  "Service",
  "Admin (master-key)",
  "Partner",
  "Partner webhooks",
  "Organization webhooks (API key)",
  "Organization (API key)",
  "Owner onboarding",
  "Leaked keys",
];
const j = (lines) => lines.join("\n");
const capture = (variable, field) => `if (pm.response.code < 300) pm.environment.set("${variable}", pm.response.json().${field});`;
/** A pre-request that creates a throwaway org (for force-revoke) or partner (for deactivate) with pm.sendRequest. */
const throwaway = (kind) =>
  kind === "org"
    ? j([
        `const id = "org_newman_revoke_" + Date.now();`,
        `pm.sendRequest({ url: pm.environment.get("baseUrl") + "/v1/admin/org/create", method: "POST",`,
        `  header: { "X-API-Key": pm.environment.get("MASTER_ADMIN_KEY_ORG_CREATE"), "Idempotency-Key": id, "Content-Type": "application/json" },`,
        `  body: { mode: "raw", raw: JSON.stringify({ org_id: id, name: "Throwaway", domain: "general", tier: "starter", allowed_origins: "https://x.example.com" }) } },`,
        `  () => pm.environment.set("revoke_org_id", id));`,
      ])
    : j([
        `pm.sendRequest({ url: pm.environment.get("baseUrl") + "/v1/admin/partners", method: "POST",`,
        `  header: { "X-API-Key": pm.environment.get("MASTER_ADMIN_KEY_PARTNER_ADMIN"), "Idempotency-Key": "p" + Date.now(), "Content-Type": "application/json" },`,
        `  body: { mode: "raw", raw: JSON.stringify({ name: "Throwaway Partner" }) } },`,
        `  (err, res) => pm.environment.set("deactivate_partner_id", res.json().partner_id));`,
      ]);

const confirm = (v) => ({ confirm_org_id: `{{${v}}}` });
/** A webhook endpoint's life, for one owner (`p`: partner, `o`: org): create … replay, then delete. */
const webhookFlow = (base, p) => ({
  [`POST ${base}`]: {
    status: 201,
    body: { url: "http://127.0.0.1:9/newman", event_types: ["key.rotated", "org.suspended"] },
    capture: capture(`${p}_endpoint_id`, "id"),
  },
  [`GET ${base}`]: { status: 200 },
  [`GET ${base}/{endpoint_id}`]: { status: 200, vars: { endpoint_id: `${p}_endpoint_id` } },
  [`POST ${base}/{endpoint_id}/rotate-secret`]: { status: 200, vars: { endpoint_id: `${p}_endpoint_id` } },
  [`POST ${base}/{endpoint_id}/test`]: { status: 202, vars: { endpoint_id: `${p}_endpoint_id` }, capture: capture(`${p}_event_id`, "event_id") },
  [`GET ${base}/{endpoint_id}/attempts`]: { status: 200, vars: { endpoint_id: `${p}_endpoint_id` } },
  [`POST ${base}/{endpoint_id}/events/{event_id}/replay`]: { status: 202, vars: { endpoint_id: `${p}_endpoint_id`, event_id: `${p}_event_id` } },
  [`DELETE ${base}/{endpoint_id}`]: { status: 200, vars: { endpoint_id: `${p}_endpoint_id` } },
});
// Every operation of the document, in the order a newman run sends them: [status, body, pre-request, capture, path vars].
const FLOW = {
  "GET /": { status: 200 },
  "POST /v1/admin/org/create": {
    status: 201,
    pre: `pm.environment.set("org_id", "org_newman_" + Date.now());`,
    body: { org_id: "{{org_id}}", name: "Newman Co", domain: "general", tier: "starter", allowed_origins: "https://newman.example.com" },
    capture: j([capture("ORG_API_KEY", "api_key"), capture("ORG_SERVER_KEY", "server_api_key")]),
  },
  "GET /v1/admin/org/{org_id}/usage": { status: 200 },
  "GET /v1/admin/org/usage": { status: 200 },
  "POST /v1/admin/org/{org_id}/suspend": { status: 200, body: confirm("org_id") },
  "POST /v1/admin/org/{org_id}/reactivate": { status: 200, body: confirm("org_id") },
  "POST /v1/admin/billing/org/{org_id}/suspend": { status: 200 },
  "POST /v1/admin/billing/org/{org_id}/rotate": {
    status: 200,
    capture: j([capture("ORG_API_KEY", "new_api_key"), capture("ORG_SERVER_KEY", "new_server_api_key")]),
  },
  "POST /v1/admin/org/{org_id}/force-rotate": {
    status: 200,
    body: confirm("org_id"),
    capture: j([capture("ORG_API_KEY", "new_api_key"), capture("ORG_SERVER_KEY", "new_server_api_key")]),
  },
  "POST /v1/admin/org/{org_id}/force-revoke": { status: 200, pre: throwaway("org"), body: confirm("revoke_org_id"), vars: { org_id: "revoke_org_id" } },
  "POST /v1/admin/partners": {
    status: 201,
    body: { name: "Newman Partner" },
    capture: j([capture("PARTNER_KEY", "partner_key"), capture("partner_id", "partner_id")]),
  },
  "GET /v1/admin/partners": { status: 200 },
  "POST /v1/admin/partners/{partner_id}/rotate-key": { status: 200, body: { expire_previous_in_seconds: 60 }, capture: capture("PARTNER_KEY", "partner_key") },
  "POST /v1/admin/partners/{partner_id}/deactivate": { status: 200, pre: throwaway("partner"), vars: { partner_id: "deactivate_partner_id" } },
  "POST /api/v1/partner/organizations": {
    status: 201,
    pre: `pm.environment.set("external_id", "newman-" + Date.now());`,
    body: { externalId: "{{external_id}}", email: "owner+{{external_id}}@newman.example.com", businessName: "Newman Customer" },
    capture: capture("organization_identifier", "organizationIdentifier"),
  },
  "GET /api/v1/partner/organizations": { status: 200 },
  "GET /api/v1/partner/organizations/{identifier}": { status: 200 },
  "GET /api/v1/partner/organizations/by-external-id/{externalId}": { status: 200 },
  "POST /api/v1/partner/organizations/{identifier}/rotate-keys": { status: 200, body: { expire_previous_in_seconds: 3600 } },
  "POST /api/v1/partner/organizations/{identifier}/resend-invite": { status: 202 },
  ...webhookFlow("/api/v1/partner/webhook-endpoints", "partner"),
  "GET /v1/admin/audit-log": { status: 200 },
  // The server key rotates the client key; then revokes itself (the last org request of the run).
  "POST /v1/admin/key/rotate": { status: 200, body: { key_type: "ck_live", expire_previous_in_seconds: 3600 }, capture: capture("ORG_API_KEY", "new_api_key") },
  "GET /v1/admin/keys": { status: 200 },
  ...webhookFlow("/v1/admin/webhook-endpoints", "org"),
  "POST /v1/admin/key/revoke": { status: 200 },
  "GET /set-password": { status: 200 },
  // Without the emailed token only the refusals can be run: they check the error envelope.
  "POST /api/v1/auth/set-password/check": { status: 400, body: { token: "A".repeat(43) } },
  "POST /api/v1/auth/set-password": { status: 400, body: { token: "A".repeat(43), password: "a long enough password" } },
  // Only GitHub can sign a report: without its signature the answer is the uniform 401.
  "POST /v1/secret-scanning/github": {
    status: 401,
    body: [{ token: "sk_live_not_a_key", type: "kelviq_key", url: "https://github.com/octocat/Hello-World/blob/main/.env", source: "content" }],
  },
  // A made-up key: the answer is the same as for a real one (202), and nothing is revoked.
  "POST /v1/keys/revoke-leaked": { status: 202, body: { keys: ["sk_live_00000000_000000000000000000000000000000"] } },
};

const PATH_VARS = { org_id: "org_id", partner_id: "partner_id", identifier: "organization_identifier", externalId: "external_id" };

function authHeader(security) {
  const scheme = Object.keys(security?.[0] ?? {})[0];
  if (!scheme) return [];
  if (scheme.startsWith("MasterKey_")) return [{ key: "X-API-Key", value: `{{MASTER_ADMIN_KEY_${scheme.slice(10)}}}` }];
  if (scheme === "partnerKeyAuth") return [{ key: "X-Kelviq-Partner-Key", value: "{{PARTNER_KEY}}" }];
  if (scheme === "OrgApiKey") return [{ key: "X-API-Key", value: "{{ORG_SERVER_KEY}}" }];
  if (scheme === "GithubSecretScanning")
    return [
      { key: "Github-Public-Key-Identifier", value: "{{GITHUB_KEY_ID}}" },
      { key: "Github-Public-Key-Signature", value: "{{GITHUB_SIGNATURE}}" },
    ];
  throw new Error(`unknown security scheme ${scheme}`);
}

const resolve = (doc, schema) => (schema?.$ref ? doc.components.schemas[schema.$ref.split("/").pop()] : schema);

function testScript(doc, op, status) {
  const lines = [`pm.test("status ${status}", () => pm.response.to.have.status(${status}));`];
  const media = op.responses[status]?.content;
  if (media?.["application/json"]) {
    const schema = resolve(doc, media["application/json"].schema);
    const required = schema?.required ?? [];
    lines.push(`pm.test("JSON body with ${required.join(", ") || "the documented shape"}", () => {`, `  const body = pm.response.json();`);
    for (const key of required) lines.push(`  pm.expect(body).to.have.property(${JSON.stringify(key)});`);
    lines.push(`});`);
  } else if (media?.["text/html"]) {
    lines.push(`pm.test("HTML", () => pm.expect(pm.response.headers.get("Content-Type")).to.include("text/html"));`);
  }
  lines.push(`pm.test("X-Request-Id", () => pm.expect(pm.response.headers.get("X-Request-Id")).to.match(/^req_[0-9A-Z]{26}$/));`);
  return lines.join("\n");
}

function item(doc, method, path, op) {
  const flow = FLOW[`${method.toUpperCase()} ${path}`];
  if (!flow) throw new Error(`No FLOW entry for ${method.toUpperCase()} ${path}: add one to scripts/postman.mjs`);
  const vars = { ...PATH_VARS, ...flow.vars };
  const segments = path
    .split("/")
    .filter(Boolean)
    .map((s) => (/^\{(.+)\}$/.test(s) ? `{{${vars[s.slice(1, -1)]}}}` : s));
  const header = [...authHeader(op.security)];
  if ((op.parameters ?? []).some((p) => p.in === "header" && p.name === "Idempotency-Key")) header.push({ key: "Idempotency-Key", value: "{{$guid}}" });
  if (flow.body) header.push({ key: "Content-Type", value: "application/json" });
  const event = [{ listen: "test", script: { type: "text/javascript", exec: [testScript(doc, op, flow.status), flow.capture ?? ""].join("\n").split("\n") } }];
  if (flow.pre) event.unshift({ listen: "prerequest", script: { type: "text/javascript", exec: flow.pre.split("\n") } });
  return {
    name: op.summary ?? `${method.toUpperCase()} ${path}`,
    event,
    request: {
      method: method.toUpperCase(),
      header,
      url: { raw: `{{baseUrl}}/${segments.join("/")}`, host: ["{{baseUrl}}"], path: segments },
      ...(flow.body ? { body: { mode: "raw", raw: JSON.stringify(flow.body, null, 2), options: { raw: { language: "json" } } } } : {}),
      description: op.description ?? op.summary,
    },
  };
}

const doc = await openapiDocument();
const order = Object.keys(FLOW);
const operations = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })));
for (const key of order)
  if (!operations.some((o) => `${o.method.toUpperCase()} ${o.path}` === key)) throw new Error(`FLOW names ${key}, which the document does not have`);
operations.sort((a, b) => order.indexOf(`${a.method.toUpperCase()} ${a.path}`) - order.indexOf(`${b.method.toUpperCase()} ${b.path}`));

const collection = {
  info: {
    name: doc.info.title,
    description: `${doc.info.description}\n\nGenerated from /openapi.json by scripts/postman.mjs; run in order (newman: npm run test:api). Select the "org-key-authority (npm start)" environment and paste the values of your .dev.vars.`,
    schema: "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
  },
  item: FOLDERS.map((folder) => ({
    name: folder,
    item: operations.filter(({ op }) => (op.tags ?? ["Service"])[0] === folder).map(({ path, method, op }) => item(doc, method, path, op)),
  })),
};
const missing = operations.filter(({ op }) => !FOLDERS.includes((op.tags ?? ["Service"])[0]));
if (missing.length) throw new Error(`operations with a tag outside the folders: ${missing.map((m) => m.path).join(", ")}`);

const dotDevVars = readFileSync(".dev.vars.example", "utf8")
  .split("\n")
  .map((l) => /^#?\s*([A-Z0-9_]+)=\s*$/.exec(l)?.[1])
  .filter((n) => n?.startsWith("MASTER_ADMIN_KEY_"));
const environment = {
  name: "org-key-authority (npm start)",
  values: [
    { key: "baseUrl", value: "http://localhost:8787", type: "default", enabled: true },
    ...dotDevVars.map((key) => ({ key, value: "", type: "secret", enabled: true })),
    ...["PARTNER_KEY", "ORG_API_KEY", "ORG_SERVER_KEY"].map((key) => ({ key, value: "", type: "secret", enabled: true })),
    ...["org_id", "partner_id", "organization_identifier", "external_id", "revoke_org_id", "deactivate_partner_id"].map((key) => ({
      key,
      value: "",
      type: "default",
      enabled: true,
    })),
  ],
};

const files = { "postman/collection.json": collection, "postman/environment.json": environment };
let stale = false;
for (const [file, content] of Object.entries(files)) {
  const text = `${JSON.stringify(content, null, 2)}\n`;
  if (check) {
    let current = "";
    try {
      current = readFileSync(file, "utf8");
    } catch {}
    if (current !== text) (stale = true), console.error(`${file} is stale: run npm run postman and commit it.`);
  } else writeFileSync(file, text);
}
if (stale) process.exit(1);
console.log(check ? "postman collection is fresh" : `wrote ${Object.keys(files).join(", ")} (${operations.length} requests)`);
