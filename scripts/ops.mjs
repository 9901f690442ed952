// The operator's command line, on the typed client (client/index.ts):
//   npm run ops -- <command> [args] [--base-url URL]
// Commands: create-org ORG_ID --name N [--domain general] [--tier starter] [--origins https://a,https://b]
//           [--owner-email E] · suspend ORG_ID · reactivate ORG_ID · force-rotate ORG_ID · usage [ORG_ID]
//           · partners · create-partner NAME
// Each command reads the master key of its scope from the environment (MASTER_ADMIN_KEY_<SCOPE>); against a local
// service (localhost) a key missing from the environment is read from .dev.vars. Keys are printed only when minted.
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { importTs } from "./import-ts.mjs";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    "base-url": { type: "string", default: process.env.KEY_AUTHORITY_URL ?? "http://localhost:8787" },
    name: { type: "string" },
    domain: { type: "string", default: "general" },
    tier: { type: "string", default: "starter" },
    origins: { type: "string", default: "" },
    "owner-email": { type: "string" },
  },
});
const [command, arg] = positionals;
const baseUrl = values["base-url"];

const USAGE = `Usage: npm run ops -- <command> [args] [--base-url ${baseUrl}]
  create-org ORG_ID --name NAME [--domain general] [--tier starter] [--origins https://a.example.com,…] [--owner-email E]
  suspend ORG_ID | reactivate ORG_ID | force-rotate ORG_ID
  usage [ORG_ID]
  partners | create-partner NAME`;

const local = /^http:\/\/(localhost|127\.0\.0\.1)(:\d+)?$/.test(baseUrl.replace(/\/+$/, ""));
const devVars =
  local && existsSync(".dev.vars") ? Object.fromEntries([...readFileSync(".dev.vars", "utf8").matchAll(/^([A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1], m[2]])) : {};
const masterKey = (scope) => {
  const name = `MASTER_ADMIN_KEY_${scope}`;
  const key = process.env[name] || devVars[name];
  if (!key) fail(`Set ${name} in the environment (the master key of scope ${scope}).`);
  return key;
};

function fail(message) {
  console.error(message);
  process.exit(2);
}

const { createAuthorityClient } = await importTs("client/index.ts");
const client = (scope) => createAuthorityClient({ baseUrl, apiKey: masterKey(scope) });

/** Prints the answer; keys only when this call minted them (they are in no other answer). */
function show({ data, error, response }) {
  if (error) {
    console.error(`${response.status} ${error.error}: ${error.message}${error.details ? ` ${JSON.stringify(error.details)}` : ""}`);
    process.exit(1);
  }
  console.log(JSON.stringify(data, null, 2));
  const minted = ["api_key", "server_api_key", "new_api_key", "new_server_api_key", "partner_key"].filter((k) => data?.[k]);
  if (minted.length) console.error(`\nShown once: store ${minted.join(" and ")} now; the service keeps only their hashes.`);
}

const needOrg = () => arg ?? fail(`${command} needs an ORG_ID.\n\n${USAGE}`);
const transition = (path, scope) => client(scope).POST(path, { params: { path: { org_id: needOrg() } }, body: { confirm_org_id: needOrg() } });

switch (command) {
  case "create-org": {
    if (!values.name) fail(`create-org needs --name.\n\n${USAGE}`);
    const origins = values.origins
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean);
    show(
      await client("ORG_CREATE").POST("/v1/admin/org/create", {
        body: {
          org_id: needOrg(),
          name: values.name,
          domain: values.domain,
          tier: values.tier,
          allowed_origins: origins,
          ...(values["owner-email"] ? { owner_email: values["owner-email"] } : {}),
        },
      }),
    );
    break;
  }
  case "suspend":
    show(await transition("/v1/admin/org/{org_id}/suspend", "ORG_SUSPEND"));
    break;
  case "reactivate":
    show(await transition("/v1/admin/org/{org_id}/reactivate", "ORG_REACTIVATE"));
    break;
  case "force-rotate":
    show(await transition("/v1/admin/org/{org_id}/force-rotate", "ORG_FORCE_ROTATE"));
    break;
  case "usage":
    show(
      arg
        ? await client("ORG_USAGE_READ").GET("/v1/admin/org/{org_id}/usage", { params: { path: { org_id: arg } } })
        : await client("ORG_USAGE_READ").GET("/v1/admin/org/usage", { params: { query: { limit: 100 } } }),
    );
    break;
  case "partners":
    show(await client("PARTNER_ADMIN").GET("/v1/admin/partners", {}));
    break;
  case "create-partner":
    show(await client("PARTNER_ADMIN").POST("/v1/admin/partners", { body: { name: arg ?? fail(`create-partner needs a NAME.\n\n${USAGE}`) } }));
    break;
  default:
    fail(USAGE);
}
