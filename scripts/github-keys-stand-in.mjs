// A local stand-in for GitHub's GET /meta/public_keys/secret_scanning (the keys that sign secret scanning reports),
// for the tests and `npm run scan:report`. It answers the JSON last PUT to it (`{"public_keys": [...]}`, GitHub's
// shape), or an empty list; any other path answers 503.
import { createServer } from "node:http";

export const KEYS_PATH = "/meta/public_keys/secret_scanning";
export const KEYS_PORT = 8799;

export function startGithubKeysStandIn({ port = KEYS_PORT, host = "127.0.0.1", keys = { public_keys: [] } } = {}) {
  let current = JSON.stringify(keys);
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    if (req.method === "PUT") {
      current = body;
      res.writeHead(204).end();
      return;
    }
    // Any other path is GitHub having a bad day: 503.
    if (!req.url.startsWith(KEYS_PATH)) return res.writeHead(503).end();
    res.writeHead(200, { "content-type": "application/json" }).end(current);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve({ server, url: `http://${host}:${server.address().port}${KEYS_PATH}` }));
  });
}
