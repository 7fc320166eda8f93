import { SlidingWindowCounter } from '@chatbox/common';

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

/** Single-process budget (the shared rule of `SlidingWindowCounter`). Also the Redis limiter's fallback. */
export class InMemoryNotificationRateLimiter implements NotificationRateLimiter {
  private readonly window = new SlidingWindowCounter();

  constructor(private readonly now: Clock = Date.now) {}

  tryAcquire(key: string, limit: number, windowMs: number): Promise<boolean> {
    return Promise.resolve(this.acquire(key, limit, windowMs));
  }

  acquire(key: string, limit: number, windowMs: number): boolean {
    return this.window.hit(key, limit, windowMs, this.now()).allowed;
  }

  /** Number of keys held, for tests of the sweep. */
  get size(): number {
    return this.window.size;
  }
}
