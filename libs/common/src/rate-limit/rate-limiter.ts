import { SlidingWindowCounter, WindowDecision } from './sliding-window';

export type Clock = () => number;

/**
 * The service's one rate-limiter port (and its DI token): at most `limit` allowed hits per key in
 * any `windowMs`. Bound once for the whole app (libs/session `RedisLinkModule`): in-process, or
 * shared by every instance through Redis in multi-instance mode, where a decision is asynchronous,
 * so callers always `await` it. Callers namespace their keys (`msg:`, `upload:`, `public:`,
 * `admin:`, `notify:`).
 */
export abstract class RateLimiter {
  abstract hit(
    key: string,
    limit: number,
    windowMs: number,
    now?: number,
  ): WindowDecision | Promise<WindowDecision>;
}

/** Exact sliding window in this process (single instance, and the Redis limiter's fallback). */
export class InProcessRateLimiter extends RateLimiter {
  private readonly window = new SlidingWindowCounter();

  /** `clock` lets tests drive the window. */
  constructor(private readonly clock: Clock = Date.now) {
    super();
  }

  hit(key: string, limit: number, windowMs: number, now = this.clock()): WindowDecision {
    return this.window.hit(key, limit, windowMs, now);
  }

  /** Number of keys held, for tests of the sweep. */
  get size(): number {
    return this.window.size;
  }
}
