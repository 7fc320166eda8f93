import { randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import Redis from 'ioredis';
import { RedisNotificationRateLimiter } from '@chatbox/notification';
import { freePort } from '@chatbox/storage';

/** The Redis the test environment provides; set REDIS_TEST_URL to use another one. */
const REDIS_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379';
const WINDOW_MS = 5 * 60_000;
/** The limiter waits at most one command timeout (1 s) before it falls back; then it stops waiting. */
const REDIS_COMMAND_BOUND_MS = 2_500;

describe('RedisNotificationRateLimiter', () => {
  const clients: Redis[] = [];
  const limiters: RedisNotificationRateLimiter[] = [];
  let keyPrefix: string;
  let now: number;

  /** Each limiter stands for one service instance with its own Redis connection. */
  function instance(): RedisNotificationRateLimiter {
    const client = new Redis(REDIS_URL);
    clients.push(client);
    const limiter = new RedisNotificationRateLimiter(client, { keyPrefix, now: () => now });
    limiters.push(limiter);
    return limiter;
  }

  beforeEach(() => {
    keyPrefix = `test:notify:${randomBytes(6).toString('hex')}:`;
    now = Date.now();
  });

  afterEach(async () => {
    const [client] = clients;
    const keys = client ? await client.keys(`${keyPrefix}*`) : [];
    if (keys.length > 0) await client.del(...keys);
    await Promise.all(limiters.splice(0).map((limiter) => limiter.close()));
    await Promise.all(clients.splice(0).map((client) => client.quit()));
  });

  it('shares one budget per key between instances', async () => {
    const a = instance();
    const b = instance();
    const answers = [
      await a.tryAcquire('llm:p1', 3, WINDOW_MS),
      await b.tryAcquire('llm:p1', 3, WINDOW_MS),
      await a.tryAcquire('llm:p1', 3, WINDOW_MS),
      await b.tryAcquire('llm:p1', 3, WINDOW_MS),
      await a.tryAcquire('llm:p1', 3, WINDOW_MS),
    ];
    expect(answers).toEqual([true, true, true, false, false]);
    expect(await b.tryAcquire('llm:p2', 3, WINDOW_MS)).toBe(true);
  });

  it('lets exactly one of many simultaneous help requests for a session through', async () => {
    const a = instance();
    const b = instance();
    const simultaneous = 20;
    const answers = await Promise.all(
      Array.from({ length: simultaneous }, (_, i) => (i % 2 ? a : b).tryAcquire('help:s1', 1, WINDOW_MS)),
    );
    expect(answers.filter(Boolean)).toHaveLength(1);
  });

  it('slides the window on the given clock and expires the key in Redis', async () => {
    const limiter = instance();
    expect(await limiter.tryAcquire('help:s1', 1, WINDOW_MS)).toBe(true);
    now += WINDOW_MS - 1;
    expect(await limiter.tryAcquire('help:s1', 1, WINDOW_MS)).toBe(false);
    now += 1;
    expect(await limiter.tryAcquire('help:s1', 1, WINDOW_MS)).toBe(true);
    const ttl = await clients[0].pttl(`${keyPrefix}help:s1`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(WINDOW_MS);
  });

  it('falls back to a per-instance budget when Redis is unreachable, without hanging', async () => {
    Logger.overrideLogger(false);
    const deadPort = await freePort();
    const limiter = RedisNotificationRateLimiter.connect(`redis://127.0.0.1:${deadPort}`, { keyPrefix });
    limiters.push(limiter);
    const started = performance.now();
    expect(await limiter.tryAcquire('help:s1', 1, WINDOW_MS)).toBe(true);
    expect(await limiter.tryAcquire('help:s1', 1, WINDOW_MS)).toBe(false);
    expect(await limiter.tryAcquire('help:s2', 1, WINDOW_MS)).toBe(true);
    expect(performance.now() - started).toBeLessThan(REDIS_COMMAND_BOUND_MS);
  });
});
