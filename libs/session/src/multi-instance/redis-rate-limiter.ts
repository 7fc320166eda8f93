import type Redis from 'ioredis';
import { redisWindowHit } from '@chatbox/common';
import { InProcessRateLimiter, RateDecision, RateLimiter } from '../ports/rate-limiter';
import { RedisLink } from './redis-link';

/**
 * Message, public and admin limits shared by every instance (SPEC 10). While Redis cannot answer,
 * decisions fall back to this instance's own window (logged once per outage): limits loosen a
 * little rather than the chat stopping.
 */
export class RedisRateLimiter extends RateLimiter {
  private readonly fallback = new InProcessRateLimiter();
  private readonly keyPrefix: string;

  constructor(private readonly link: RedisLink) {
    super();
    this.keyPrefix = `${link.prefix}rate:`;
  }

  async hit(key: string, limit: number, windowMs: number, now = Date.now()): Promise<RateDecision> {
    if (this.link.down) return this.fallback.hit(key, limit, windowMs, now);
    try {
      const decision = await redisWindowHit(
        this.link.commands as Redis,
        this.keyPrefix + key,
        limit,
        windowMs,
        now,
      );
      this.link.reportSuccess();
      return decision;
    } catch (error) {
      this.link.reportFailure('rate limits', error);
      return this.fallback.hit(key, limit, windowMs, now);
    }
  }
}
