// A local webhook receiver.
//   `npm run webhooks:listen -- --port 8790 --secret whsec_…` verifies every delivery with the `standardwebhooks`
//   package (the library a partner would use) and prints it; a bad signature is answered 400.
//   The tests start it without a secret (startWebhookReceiver): it records each request, and its path says how to
//   answer: /status/<code>/… answers that code, /flaky/<n>/… answers 500 n times and then 200, anything else 200.
//   GET /_received/<path> returns what was POSTed to /<path> (oldest first).
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { Webhook } from "standardwebhooks";

export function startWebhookReceiver({ port = 0, host = "127.0.0.1", secret = null, log = null } = {}) {
  const received = new Map();
  const hits = new Map();
  const webhook = secret ? new Webhook(secret) : null;
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const path = req.url.split("?")[0];
    if (req.method === "GET" && path.startsWith("/_received/")) {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(received.get(path.slice("/_received".length)) ?? []));
      return;
    }
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    const list = received.get(path) ?? [];
    list.push({ headers, body, at: new Date().toISOString() });
    received.set(path, list);
    const n = (hits.get(path) ?? 0) + 1;
    hits.set(path, n);
    if (webhook) {
      try {
        const event = webhook.verify(body, headers);
        log?.(`${headers["webhook-id"]}  ${event.type}  ${JSON.stringify(event.data)}`);
      } catch (err) {
        log?.(`REFUSED ${headers["webhook-id"] ?? "(no webhook-id)"}: ${err.message}`);
        return res.writeHead(400).end("signature did not verify");
      }
    }
    const status = /^\/status\/(\d{3})\//.exec(path);
    if (status) return res.writeHead(Number(status[1])).end();
    const flaky = /^\/flaky\/(\d+)\//.exec(path);
    if (flaky && n <= Number(flaky[1])) return res.writeHead(500).end("failing on purpose");
    res.writeHead(204).end();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve({ server, url: `http://${host}:${server.address().port}` }));
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "8790" }, secret: { type: "string" } } });
  const secret = values.secret ?? process.env.WEBHOOK_SECRET;
  if (!secret?.startsWith("whsec_")) {
    console.error("Usage: npm run webhooks:listen -- --port 8790 --secret whsec_…  (the secret your endpoint's create answered with)");
    process.exit(2);
  }
  const { url } = await startWebhookReceiver({ port: Number(values.port), secret, log: (line) => console.log(line) });
  console.log(`Listening on ${url}/ — every delivery is verified with the standardwebhooks package. Ctrl-C stops.`);
}
