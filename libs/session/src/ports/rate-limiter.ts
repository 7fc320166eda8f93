import { Injectable } from '@nestjs/common';

export interface RateDecision {
  allowed: boolean;
  /** When refused: milliseconds until the next hit would be allowed. */
  retryAfterMs: number;
}

/**
 * Sliding-window limiter port; in-process here, shared through Redis in multi-instance mode (where
 * a decision is asynchronous: callers always `await` it).
 */
export abstract class RateLimiter {
  abstract hit(
    key: string,
    limit: number,
    windowMs: number,
    now?: number,
  ): RateDecision | Promise<RateDecision>;
}

/** Exact sliding window: the timestamps of the last `limit` allowed hits per key. */
@Injectable()
export class InProcessRateLimiter extends RateLimiter {
  private readonly hits = new Map<string, number[]>();

  hit(key: string, limit: number, windowMs: number, now = Date.now()): RateDecision {
    const recent = (this.hits.get(key) ?? []).filter((at) => at > now - windowMs);
    if (recent.length >= limit) {
      this.hits.set(key, recent);
      return { allowed: false, retryAfterMs: Math.max(1, recent[0] + windowMs - now) };
    }
    recent.push(now);
    this.hits.set(key, recent);
    return { allowed: true, retryAfterMs: 0 };
  }

  /** Drops keys whose window has passed, so memory follows active users only. */
  sweep(windowMs: number, now = Date.now()): void {
    for (const [key, times] of this.hits) {
      if (times.every((at) => at <= now - windowMs)) this.hits.delete(key);
    }
  }
}
