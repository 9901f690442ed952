// Imports a TypeScript module of this repository from a Node script on any Node version: esbuild bundles it for
// Node in memory, and the bundle is imported as a data: URL.
import { build } from "esbuild";

export async function importTs(entry) {
  const out = await build({ entryPoints: [entry], bundle: true, platform: "node", format: "esm", write: false, logLevel: "silent" });
  return import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString("base64")}`);
}
