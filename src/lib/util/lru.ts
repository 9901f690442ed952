/**
 * A Map bounded to `capacity` entries that evicts the least recently used one (a Map keeps insertion order: a hit is
 * moved to the end, the first key is the oldest). Isolate caches use it so a full cache drops one cold entry, not
 * every hot one at once.
 */
export class LruMap<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly capacity: number) {}

  get size() {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V) {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as K);
    return this;
  }

  delete(key: K) {
    return this.map.delete(key);
  }

  entries() {
    return this.map.entries();
  }
}
