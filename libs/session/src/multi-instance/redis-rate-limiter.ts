import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import { InProcessRateLimiter, RateDecision, RateLimiter } from '../ports/rate-limiter';
import { RedisLink } from './redis-link';

/**
 * Exact sliding window in a sorted set (scores = times of the allowed hits), atomic on the Redis
 * side so two instances cannot both slip under the limit. Same rule as `InProcessRateLimiter`.
 * KEYS[1] key; ARGV now, windowMs, limit, unique member. Returns {allowed, retryAfterMs}.
 */
const SLIDING_WINDOW_SCRIPT = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + window - now
  if wait < 1 then wait = 1 end
  return {0, wait}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
`;
const MEMBER_RANDOM_BYTES = 6;

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
      const member = `${now}-${randomBytes(MEMBER_RANDOM_BYTES).toString('hex')}`;
      const [allowed, retryAfterMs] = (await (this.link.commands as Redis).eval(
        SLIDING_WINDOW_SCRIPT,
        1,
        this.keyPrefix + key,
        now,
        windowMs,
        limit,
        member,
      )) as [number, number];
      this.link.reportSuccess();
      return { allowed: allowed === 1, retryAfterMs: Number(retryAfterMs) };
    } catch (error) {
      this.link.reportFailure('rate limits', error);
      return this.fallback.hit(key, limit, windowMs, now);
    }
  }
}
