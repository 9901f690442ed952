/** ISO-8601 UTC with milliseconds, the one timestamp format of this service. */
export const isoNow = (now = Date.now()): string => new Date(now).toISOString();
