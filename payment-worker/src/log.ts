// One JSON object per line, each with the request_id of the delivery it belongs to (and the Stripe event id).
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** `req_` + 26 random Crockford characters: this worker's id for one webhook delivery or one cron run. */
export const newRequestId = () => `req_${[...crypto.getRandomValues(new Uint8Array(26))].map((b) => CROCKFORD[b & 31]).join("")}`;

/** The request id of each event being handled in this isolate, so handlers' log lines carry it. */
const requestIds = new Map<string, string>();

export function withRequestId<T>(eventId: string, requestId: string, run: () => Promise<T>): Promise<T> {
  requestIds.set(eventId, requestId);
  return run().finally(() => requestIds.delete(eventId));
}

export const log = (fields: Record<string, unknown> & { event_id?: string; request_id?: string }) =>
  console.log(JSON.stringify({ worker: "payment-worker", request_id: fields.request_id ?? (fields.event_id ? requestIds.get(fields.event_id) : undefined), ...fields }));
