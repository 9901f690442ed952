// The service's OpenAPI document, from the app itself (src/app.ts bundled for Node by esbuild), never from a running
// server: the Postman collection and the typed client are generated from it.
import { build } from "esbuild";

export async function openapiDocument() {
  const out = await build({ entryPoints: ["src/app.ts"], bundle: true, platform: "node", format: "esm", write: false, logLevel: "silent" });
  const url = `data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString("base64")}`;
  const { createApp } = await import(url);
  const env = { IP_RATE_LIMITER: { limit: async () => ({ success: true }) } };
  const res = await createApp().request("/openapi.json", {}, env);
  return res.json();
}
