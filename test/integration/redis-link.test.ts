import { randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { Test, TestingModule } from '@nestjs/testing';
import Redis from 'ioredis';
import { AppConfigModule, LifecycleModule, loadConfig, RateLimiter } from '@chatbox/common';
import { RedisLinkModule } from '@chatbox/session';
import { freePort } from '@chatbox/storage';
import { startTestApp, TestApp } from '../support/app';
import { TestRedis } from '../support/redis-server';
import { userToken } from '../support/tokens';
import { TestClient } from '../support/ws-client';

/** The Redis the test environment provides; set REDIS_TEST_URL to use another one. */
const REDIS_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379';
const WINDOW_MS = 5 * 60_000;
/** The limiter waits at most one command timeout (1 s) before it falls back; then it stops waiting. */
const REDIS_COMMAND_BOUND_MS = 2_500;
const HELP_CONFIRMATION = /Help request sent/;

describe('the one RateLimiter of RedisLinkModule, shared through Redis', () => {
  const modules: TestingModule[] = [];
  let keyPrefix: string;
  let now: number;

  /** One service instance's binding (as in the app), with its own link to `redisUrl`. */
  async function instance(redisUrl = REDIS_URL): Promise<RateLimiter> {
    const config = loadConfig({ NODE_ENV: 'test', REDIS_URL: redisUrl, REDIS_KEY_PREFIX: keyPrefix });
    const moduleRef = await Test.createTestingModule({
      imports: [AppConfigModule.forRoot(config), LifecycleModule, RedisLinkModule],
    }).compile();
    moduleRef.useLogger(false);
    modules.push(moduleRef);
    return moduleRef.get(RateLimiter);
  }

  const allowed = async (limiter: RateLimiter, key: string, limit: number) =>
    (await limiter.hit(key, limit, WINDOW_MS, now)).allowed;

  beforeEach(() => {
    keyPrefix = `test:limits:${randomBytes(6).toString('hex')}:`;
    now = Date.now();
  });

  afterEach(async () => {
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await Promise.all(modules.splice(0).map((moduleRef) => moduleRef.close()));
  });

  it('shares one budget per key between instances', async () => {
    const a = await instance();
    const b = await instance();
    const answers = [
      await allowed(a, 'notify:llm:p1', 3),
      await allowed(b, 'notify:llm:p1', 3),
      await allowed(a, 'notify:llm:p1', 3),
      await allowed(b, 'notify:llm:p1', 3),
      await allowed(a, 'notify:llm:p1', 3),
    ];
    expect(answers).toEqual([true, true, true, false, false]);
    expect(await allowed(b, 'notify:llm:p2', 3)).toBe(true);
  });

  it('lets exactly one of many simultaneous hits with a budget of one through', async () => {
    const a = await instance();
    const b = await instance();
    const simultaneous = 20;
    const answers = await Promise.all(
      Array.from({ length: simultaneous }, (_, i) => allowed(i % 2 ? a : b, 'notify:help:s1', 1)),
    );
    expect(answers.filter(Boolean)).toHaveLength(1);
  });

  it('slides the window on the given time and expires the key in Redis', async () => {
    const limiter = await instance();
    expect(await allowed(limiter, 'notify:help:s1', 1)).toBe(true);
    now += WINDOW_MS - 1;
    expect(await limiter.hit('notify:help:s1', 1, WINDOW_MS, now)).toEqual({
      allowed: false,
      retryAfterMs: 1,
    });
    now += 1;
    expect(await allowed(limiter, 'notify:help:s1', 1)).toBe(true);
    const redis = new Redis(REDIS_URL);
    const ttl = await redis.pttl(`${keyPrefix}rate:notify:help:s1`);
    await redis.quit();
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(WINDOW_MS);
  });

  it('falls back to a per-instance budget when Redis is unreachable, without hanging', async () => {
    Logger.overrideLogger(false);
    const limiter = await instance(`redis://127.0.0.1:${await freePort()}`);
    const started = performance.now();
    expect(await allowed(limiter, 'notify:help:s1', 1)).toBe(true);
    expect(await allowed(limiter, 'notify:help:s1', 1)).toBe(false);
    expect(await allowed(limiter, 'notify:help:s2', 1)).toBe(true);
    expect(performance.now() - started).toBeLessThan(REDIS_COMMAND_BOUND_MS);
  });
});

describe('an instance talks to Redis over one link: a command and a subscriber connection', () => {
  const redis = new TestRedis();
  let t: TestApp;
  let probe: Redis;
  const keyPrefix = `test:link:${randomBytes(6).toString('hex')}:`;

  beforeAll(async () => {
    await redis.start();
    probe = new Redis(redis.url);
    t = await startTestApp({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: keyPrefix });
  });
  afterAll(async () => {
    await t?.close();
    await probe?.quit();
    await redis.kill();
  });

  it('readiness and the help alert budget use it; nothing opens a third connection', async () => {
    const ready = (await (await fetch(`${t.baseUrl}/readyz`)).json()) as any;
    expect(ready.checks.redis).toMatchObject({ status: 'ready', latency_ms: expect.any(Number) });

    const client = await TestClient.connect(t.wsUrl, { token: userToken('one-link') });
    try {
      await client.waitForType('connection_status');
      client.send({ type: 'help_request', content: 'Please help' });
      const confirmation = await client.waitFor((frame) => HELP_CONFIRMATION.test(frame.content ?? ''));
      // The alert goes out after the confirmation; its budget is counted before anything is sent.
      const alertKey = `${keyPrefix}rate:notify:help:${confirmation.session_id}`;
      const deadline = Date.now() + REDIS_COMMAND_BOUND_MS;
      while (!(await probe.exists(alertKey)) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await probe.exists(alertKey)).toBe(1);
    } finally {
      await client.close();
    }

    const probeId = await probe.client('ID');
    const clients = (await probe.client('LIST')) as string;
    const others = clients
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith(`id=${probeId} `));
    expect(others).toHaveLength(2);
    expect(others.filter((line) => /flags=P|sub=[1-9]|psub=[1-9]/.test(line))).toHaveLength(1);
  });
});
