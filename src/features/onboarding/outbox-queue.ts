// Producing side of the outbox queue (kept apart from the consumer, which needs cloudflare:email).

export interface OutboxMessage {
  outbox_id: string;
}

export const enqueueOutbox = (queue: Queue, ids: string[]) =>
  ids.length ? queue.sendBatch(ids.map((outbox_id) => ({ body: { outbox_id } satisfies OutboxMessage }))) : Promise.resolve();
