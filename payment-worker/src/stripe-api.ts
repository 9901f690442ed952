// The one Stripe API call the payment worker makes: what a Checkout Session bought (its line items), mapped to a
// tier through PRICE_TIERS. The SDK reaches STRIPE_API_BASE (https://api.stripe.com unless a local stand-in is
// configured) with STRIPE_API_KEY, a restricted key that may read Checkout Sessions and nothing else.
import Stripe from "stripe";
import { TransientServiceError } from "./billing";
import type { PaymentEnv } from "./env";

export const TIERS = ["starter", "standard", "enterprise"] as const;
export type Tier = (typeof TIERS)[number];

const clients = new Map<string, Stripe>();

function stripeClient(env: PaymentEnv): Stripe {
  const base = new URL(env.STRIPE_API_BASE || "https://api.stripe.com");
  const id = `${base.origin}|${env.STRIPE_API_KEY}`;
  let client = clients.get(id);
  if (!client) {
    client = new Stripe(env.STRIPE_API_KEY, {
      host: base.hostname,
      port: Number(base.port || (base.protocol === "https:" ? 443 : 80)),
      protocol: base.protocol === "http:" ? "http" : "https",
      httpClient: Stripe.createFetchHttpClient(),
      maxNetworkRetries: 2,
      timeout: 10_000,
    });
    clients.set(id, client);
  }
  return client;
}

/** PRICE_TIERS: a JSON object of price id → tier. A broken table is a configuration error: transient (503). */
export function priceTiers(env: PaymentEnv): Record<string, Tier> {
  let table: unknown;
  try {
    table = JSON.parse(env.PRICE_TIERS || "{}");
  } catch {
    throw new TransientServiceError("PRICE_TIERS is not valid JSON");
  }
  if (!table || typeof table !== "object" || Array.isArray(table) || Object.values(table).some((t) => !TIERS.includes(t as Tier))) {
    throw new TransientServiceError(`PRICE_TIERS must map price ids to one of ${TIERS.join(", ")}`);
  }
  return table as Record<string, Tier>;
}

export type Purchase = { tier: Tier; prices: string[] } | { refused: string; prices: string[] };

/**
 * The tier a session bought: every line item's price must be in PRICE_TIERS and name the same tier. Anything else
 * is refused (final: logged, nothing provisioned). Stripe unreachable, 5xx, 429 or an auth error: transient.
 */
export async function purchasedTier(env: PaymentEnv, sessionId: string): Promise<Purchase> {
  const table = priceTiers(env);
  let items: Stripe.ApiList<Stripe.LineItem>;
  try {
    items = await stripeClient(env).checkout.sessions.listLineItems(sessionId, { limit: 100 });
  } catch (err) {
    if (err instanceof Stripe.errors.StripeInvalidRequestError && err.statusCode === 404) return { refused: "the session is unknown to Stripe", prices: [] };
    throw new TransientServiceError(`Stripe line items unavailable: ${err instanceof Error ? err.message : err}`);
  }
  const prices = items.data.map((item) => item.price?.id ?? "(no price)");
  if (prices.length === 0) return { refused: "the session has no line items", prices };
  const unknown = prices.filter((p) => !(p in table));
  if (unknown.length) return { refused: `unknown price ${unknown.join(", ")} (not in PRICE_TIERS)`, prices };
  const tiers = new Set(prices.map((p) => table[p]));
  if (tiers.size !== 1) return { refused: `the prices name several tiers (${[...tiers].join(", ")})`, prices };
  return { tier: [...tiers][0], prices };
}
