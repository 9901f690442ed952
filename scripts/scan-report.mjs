// `npm run scan:report -- <key> [--port 8787]`: the whole path of a leaked key, locally. It signs a GitHub secret
// scanning report of <key> with a local test key pair (made once, kept in .wrangler/scan-report-key.json), serves
// that key as GitHub's key list on 127.0.0.1:8799 (where `npm start` points GITHUB_SECRET_SCANNING_KEYS_URL) while
// the report runs, sends it to the running service and prints the answer: true_positive and, for a live server or
// partner key, a key that no longer works (and an email to the owner: npm run mail).
import { createSign, generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { KEYS_PORT, startGithubKeysStandIn } from "./github-keys-stand-in.mjs";

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? fallback : args[i + 1];
};
const token = args.find((a, i) => !a.startsWith("--") && !args[i - 1]?.startsWith("--"));
if (!token) {
  console.error("usage: npm run scan:report -- <key> [--port 8787 | --url http://localhost:8787]");
  process.exit(2);
}
const base = flag("url", `http://localhost:${flag("port", "8787")}`);

const FILE = ".wrangler/scan-report-key.json";
let pair = existsSync(FILE) ? JSON.parse(readFileSync(FILE, "utf8")) : null;
if (!pair) {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  pair = {
    id: `local-${Date.now().toString(16)}`,
    publicKey: publicKey.export({ type: "spki", format: "pem" }),
    privateKey: privateKey.export({ type: "pkcs8", format: "pem" }),
  };
  mkdirSync(".wrangler", { recursive: true });
  writeFileSync(FILE, JSON.stringify(pair), { mode: 0o600 });
}

const body = JSON.stringify([{ token, type: "kelviq_api_key", url: "https://github.com/example/leaky-repo/blob/main/.env", source: "content" }]);
const signature = createSign("SHA256").update(body).sign(pair.privateKey).toString("base64"); // DER, as GitHub sends
const { server } = await startGithubKeysStandIn({
  port: KEYS_PORT,
  keys: { public_keys: [{ key_identifier: pair.id, key: pair.publicKey, is_current: true }] },
});
try {
  const res = await fetch(`${base}/v1/secret-scanning/github`, {
    method: "POST",
    headers: { "content-type": "application/json", "github-public-key-identifier": pair.id, "github-public-key-signature": signature },
    body,
  });
  console.log(`POST ${base}/v1/secret-scanning/github → ${res.status} ${await res.text()}`);
} finally {
  server.close();
}
