// The usage period: the rolling 30 days of UTC day buckets ending today (today counts as day 30).
const DAY_MS = 86_400_000;
export const PERIOD_DAYS = 30;

export const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export function usagePeriod(now = Date.now()) {
  const startMs = Date.parse(`${utcDay(now - (PERIOD_DAYS - 1) * DAY_MS)}T00:00:00.000Z`);
  return { startDay: utcDay(startMs), start: new Date(startMs).toISOString(), end: new Date(now).toISOString() };
}
