/**
 * Decides whether an alert for a key may go out: at most `limit` alerts per key per `windowMs`
 * (sliding window). In multi-instance mode the budget must be shared, hence the interface.
 */
export interface NotificationRateLimiter {
  /** Counts the alert and answers true when it is within budget, false when it must be suppressed. */
  tryAcquire(key: string, limit: number, windowMs: number): Promise<boolean>;
  close?(): Promise<void>;
}

export type Clock = () => number;

interface KeyWindow {
  /** Times of the alerts still inside the window, oldest first. */
  hits: number[];
  windowMs: number;
}

/** Stale keys are dropped only once there are this many, so a lookup stays O(1) on average. */
const SWEEP_THRESHOLD_KEYS = 1_000;

/** Single-process budget. Also the fallback of the Redis limiter while Redis cannot answer. */
export class InMemoryNotificationRateLimiter implements NotificationRateLimiter {
  private readonly windows = new Map<string, KeyWindow>();

  constructor(private readonly now: Clock = Date.now) {}

  tryAcquire(key: string, limit: number, windowMs: number): Promise<boolean> {
    return Promise.resolve(this.acquire(key, limit, windowMs));
  }

  acquire(key: string, limit: number, windowMs: number): boolean {
    const now = this.now();
    if (this.windows.size >= SWEEP_THRESHOLD_KEYS) this.sweep(now);
    const entry = this.windows.get(key) ?? { hits: [], windowMs };
    entry.windowMs = windowMs;
    entry.hits = entry.hits.filter((hit) => hit > now - windowMs);
    const allowed = entry.hits.length < limit;
    if (allowed) entry.hits.push(now);
    if (entry.hits.length > 0) this.windows.set(key, entry);
    else this.windows.delete(key);
    return allowed;
  }

  /** Number of keys held, for tests of the sweep. */
  get size(): number {
    return this.windows.size;
  }

  private sweep(now: number): void {
    for (const [key, entry] of this.windows) {
      const newest = entry.hits[entry.hits.length - 1];
      if (newest === undefined || newest <= now - entry.windowMs) this.windows.delete(key);
    }
  }
}
