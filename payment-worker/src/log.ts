// One JSON object per line, each with the request_id of the delivery it belongs to (and the Stripe event id). Ids
// are the service's own kind (`req_` + ULID): one webhook delivery or one cron run each.
export { newRequestId } from "../../src/lib/util/ids";

/** The request id of each event being handled in this isolate, so handlers' log lines carry it. */
const requestIds = new Map<string, string>();

export function withRequestId<T>(eventId: string, requestId: string, run: () => Promise<T>): Promise<T> {
  requestIds.set(eventId, requestId);
  return run().finally(() => requestIds.delete(eventId));
}

export const log = (fields: Record<string, unknown> & { event_id?: string; request_id?: string }) =>
  console.log(
    JSON.stringify({ worker: "payment-worker", request_id: fields.request_id ?? (fields.event_id ? requestIds.get(fields.event_id) : undefined), ...fields }),
  );
