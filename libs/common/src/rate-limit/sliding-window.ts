import { randomHex } from '../ids';

/** One limiter rule for the whole service: at most `limit` allowed hits per key in any `windowMs`. */
export interface WindowDecision {
  allowed: boolean;
  /** When refused: milliseconds until the next hit would be allowed (at least 1). */
  retryAfterMs: number;
}

interface KeyWindow {
  /** Times of the allowed hits still inside the window, oldest first. */
  hits: number[];
  windowMs: number;
}

/** Stale keys are dropped only once there are this many, so a lookup stays O(1) on average. */
const SWEEP_THRESHOLD_KEYS = 1_000;

/**
 * Exact sliding window in memory (single instance, and the fallback of the Redis limiters).
 * Memory follows active keys: windows that have passed are swept once the map grows.
 */
export class SlidingWindowCounter {
  private readonly windows = new Map<string, KeyWindow>();

  hit(key: string, limit: number, windowMs: number, now: number): WindowDecision {
    if (this.windows.size >= SWEEP_THRESHOLD_KEYS) this.sweep(now);
    const entry = this.windows.get(key) ?? { hits: [], windowMs };
    entry.windowMs = windowMs;
    entry.hits = entry.hits.filter((hit) => hit > now - windowMs);
    const allowed = entry.hits.length < limit;
    if (allowed) entry.hits.push(now);
    if (entry.hits.length > 0) this.windows.set(key, entry);
    else this.windows.delete(key);
    return { allowed, retryAfterMs: allowed ? 0 : Math.max(1, entry.hits[0] + windowMs - now) };
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

/**
 * The same rule in Redis: a sorted set of allowed-hit times, atomic so two instances cannot both
 * slip under the limit. KEYS[1] key; ARGV now, windowMs, limit, unique member → {allowed, waitMs}.
 */
export const SLIDING_WINDOW_SCRIPT = `
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

/** What the Redis window needs of a client (ioredis satisfies it); common stays free of ioredis. */
export interface ScriptRunner {
  eval(script: string, numberOfKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

const MEMBER_RANDOM_BYTES = 6;

/** One hit against the Redis window. Throws when Redis cannot answer: callers fall back. */
export async function redisWindowHit(
  redis: ScriptRunner,
  key: string,
  limit: number,
  windowMs: number,
  now: number,
): Promise<WindowDecision> {
  const member = `${now}-${randomHex(MEMBER_RANDOM_BYTES)}`;
  const [allowed, waitMs] = (await redis.eval(
    SLIDING_WINDOW_SCRIPT,
    1,
    key,
    now,
    windowMs,
    limit,
    member,
  )) as [number, number];
  return { allowed: Number(allowed) === 1, retryAfterMs: Number(waitMs) };
}
