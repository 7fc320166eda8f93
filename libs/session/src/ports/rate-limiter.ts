import { Injectable } from '@nestjs/common';
import { SlidingWindowCounter } from '@chatbox/common';

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

/** Exact sliding window in this process (the shared rule of `SlidingWindowCounter`). */
@Injectable()
export class InProcessRateLimiter extends RateLimiter {
  private readonly window = new SlidingWindowCounter();

  hit(key: string, limit: number, windowMs: number, now = Date.now()): RateDecision {
    return this.window.hit(key, limit, windowMs, now);
  }
}
