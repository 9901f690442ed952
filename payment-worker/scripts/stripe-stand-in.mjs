// A local stand-in for the one Stripe API call the payment worker makes: GET /v1/checkout/sessions/{id}/line_items
// (what a checkout bought). Used by the tests and by `npm run start:payments`; nothing here reaches Stripe.
//
// A session's line items are its registered price ids (PUT /__stand-in/sessions/{id}/line_items with a JSON array
// of price ids; `[]` for none, `null` for a session Stripe would not know: 404, `"error"` for Stripe failing: 500),
// else one item of DEFAULT_PRICE, so
// `npm run stripe:send -- checkout.session.completed` works with no setup. Requests need a Bearer key, as Stripe's.
import { createServer } from "node:http";

export const STAND_IN_PORT = 12111; // stripe-mock's port
export const DEFAULT_PRICE = "price_standard_monthly";

const stripeError = (status, type, message) => ({ status, body: { error: { type, message } } });

function lineItems(sessionId, priceIds) {
  return {
    object: "list",
    url: `/v1/checkout/sessions/${sessionId}/line_items`,
    has_more: false,
    data: priceIds.map((price, i) => ({
      id: `li_${sessionId.slice(-12)}_${i}`,
      object: "item",
      amount_subtotal: 4900,
      amount_total: 4900,
      currency: "usd",
      description: price,
      quantity: 1,
      price: { id: price, object: "price", active: true, currency: "usd", unit_amount: 4900, type: "recurring" },
    })),
  };
}

/** Starts the stand-in on `port` (0: any free port); resolves to { port, server, requests }. */
export function startStripeStandIn({ port = STAND_IN_PORT, host = "127.0.0.1", quiet = true } = {}) {
  const sessions = new Map();
  const requests = [];
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const url = new URL(req.url, "http://stand-in");
    const send = ({ status, body }) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const register = /^\/__stand-in\/sessions\/([^/]+)\/line_items$/.exec(url.pathname);
    if (register && req.method === "PUT") {
      sessions.set(decodeURIComponent(register[1]), JSON.parse(body || "null"));
      return send({ status: 204, body: {} });
    }
    const items = /^\/v1\/checkout\/sessions\/([^/]+)\/line_items$/.exec(url.pathname);
    requests.push({ method: req.method, path: url.pathname, authorized: /^Bearer \S+/.test(req.headers.authorization ?? "") });
    if (!quiet) console.log(`stripe stand-in: ${req.method} ${url.pathname}`);
    if (!/^Bearer \S+/.test(req.headers.authorization ?? "")) return send(stripeError(401, "invalid_request_error", "You did not provide an API key."));
    if (!items || req.method !== "GET") return send(stripeError(404, "invalid_request_error", `Unrecognized request URL (${req.method}: ${url.pathname}).`));
    const id = decodeURIComponent(items[1]);
    const registered = sessions.has(id) ? sessions.get(id) : [DEFAULT_PRICE];
    if (registered === null) return send(stripeError(404, "invalid_request_error", `No such checkout.session: '${id}'`));
    if (registered === "error") return send(stripeError(500, "api_error", "Something went wrong on Stripe's end."));
    send({ status: 200, body: lineItems(id, registered) });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve({ port: server.address().port, server, requests }));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { port } = await startStripeStandIn({ port: Number(process.env.PORT ?? STAND_IN_PORT), quiet: false });
  console.log(`Stripe stand-in on http://127.0.0.1:${port}`);
}
