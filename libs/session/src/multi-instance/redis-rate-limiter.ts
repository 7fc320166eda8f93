import type Redis from 'ioredis';
import { InProcessRateLimiter, RateLimiter, redisWindowHit, WindowDecision } from '@chatbox/common';
import { RedisLink } from './redis-link';

/**
 * Every limit of the service (messages, uploads, public and admin routes, alert budgets) shared by
 * every instance (SPEC 10). While Redis cannot answer, decisions fall back to this instance's own
 * window (logged once per outage by the link): limits loosen a little rather than the chat stopping
 * or an alert going silent.
 */
export class RedisRateLimiter extends RateLimiter {
  private readonly fallback = new InProcessRateLimiter();
  private readonly keyPrefix: string;

  constructor(private readonly link: RedisLink) {
    super();
    this.keyPrefix = `${link.prefix}rate:`;
  }

  async hit(key: string, limit: number, windowMs: number, now = Date.now()): Promise<WindowDecision> {
    // Known outage: no wait for a command timeout on every decision until the connection is back.
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
