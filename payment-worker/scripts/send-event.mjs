// Signs a Stripe event fixture the way Stripe does and POSTs it to the payment worker.
//   npm run stripe:send -- checkout.session.completed [--org org_acme_demo] [--email you@example.com] [--keep-id]
//                          [--port 8788 | --url http://host:port]
// A fresh event id is used unless --keep-id (keep it to see a redelivery replay).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import Stripe from "stripe";

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? fallback : args[i + 1];
};
const type = args.find((a) => !a.startsWith("--") && !args[args.indexOf(a) - 1]?.startsWith("--")) ?? "checkout.session.completed";
const url = flag("url", `http://localhost:${flag("port", "8788")}`);
const orgId = flag("org", "org_acme_2026_example");
const secret = /^STRIPE_WEBHOOK_SECRET=(.*)$/m.exec(readFileSync(new URL("../.dev.vars", import.meta.url), "utf8"))?.[1];
if (!secret) throw new Error("No STRIPE_WEBHOOK_SECRET in payment-worker/.dev.vars: run npm run start:payments first.");

// One Checkout Session per org (the session id is what provisions the org once).
const event = JSON.parse(
  readFileSync(new URL(`../test/fixtures/${type}.json`, import.meta.url), "utf8")
    .replaceAll("org_acme_2026_example", orgId)
    .replaceAll("cs_test_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ", `cs_local_${orgId}`)
    .replaceAll("billing@acme.example.com", flag("email", "billing@acme.example.com")),
);
if (!args.includes("--keep-id")) event.id = `evt_local_${Date.now().toString(36)}`;
// Stripe orders events by `created` (seconds). Sends a second apart or less would tie, and a tie is resolved towards
// suspending; so each send is stamped at least one second after the previous one, and a walk-through sent in order
// is applied in order. The last stamp is kept in .wrangler/ (git-ignored).
const CLOCK = new URL("../../.wrangler/stripe-send-last-created", import.meta.url);
let last = 0;
try {
  last = Number(readFileSync(CLOCK, "utf8")) || 0;
} catch {}
event.created = Math.max(Math.floor(Date.now() / 1000), last + 1);
mkdirSync(new URL("./", CLOCK), { recursive: true });
writeFileSync(CLOCK, String(event.created));
const payload = JSON.stringify(event);
const signature = await Stripe.webhooks.generateTestHeaderStringAsync({ payload, secret });
const res = await fetch(`${url}/stripe/webhook`, {
  method: "POST",
  headers: { "content-type": "application/json", "stripe-signature": signature },
  body: payload,
});
console.log(`${event.type} ${event.id} → ${res.status} ${await res.text()}`);
