import { describe, expect, it } from "vitest";
import { LruMap } from "../src/lib/util/lru";

describe("LruMap (the isolate caches' eviction)", () => {
  it("evicts the least recently used entry, one at a time, instead of clearing everything", () => {
    const lru = new LruMap<string, number>(3);
    lru.set("a", 1).set("b", 2).set("c", 3);
    expect(lru.get("a")).toBe(1); // a is now the most recent
    lru.set("d", 4); // evicts b, the least recently used
    expect(lru.get("b")).toBeUndefined();
    expect([...lru.entries()].map(([k]) => k)).toEqual(["c", "a", "d"]);
    expect(lru.size).toBe(3);
    lru.set("c", 30); // an update counts as a use
    lru.set("e", 5); // evicts a
    expect([...lru.entries()].map(([k, v]) => `${k}=${v}`)).toEqual(["d=4", "c=30", "e=5"]);
  });
});
