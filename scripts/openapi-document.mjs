// The service's OpenAPI document, from the app itself (src/app.ts bundled for Node by esbuild), never from a running
// server: the Postman collection and the typed client are generated from it.
import { importTs } from "./import-ts.mjs";

export async function openapiDocument() {
  const { createApp } = await importTs("src/app.ts");
  const env = { IP_RATE_LIMITER: { limit: async () => ({ success: true }) } };
  const res = await createApp().request("/openapi.json", {}, env);
  return res.json();
}
