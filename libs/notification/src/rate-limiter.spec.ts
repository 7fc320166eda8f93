import { InMemoryNotificationRateLimiter } from './rate-limiter';

const WINDOW_MS = 5 * 60_000;

function fakeClock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('InMemoryNotificationRateLimiter', () => {
  it('allows `limit` alerts per key per window, then suppresses', async () => {
    const clock = fakeClock();
    const limiter = new InMemoryNotificationRateLimiter(clock.now);
    const answers = [];
    for (let i = 0; i < 7; i++) answers.push(await limiter.tryAcquire('llm:a', 5, WINDOW_MS));
    expect(answers).toEqual([true, true, true, true, true, false, false]);
  });

  it('keeps keys apart', async () => {
    const limiter = new InMemoryNotificationRateLimiter(fakeClock().now);
    expect(await limiter.tryAcquire('help:s1', 1, WINDOW_MS)).toBe(true);
    expect(await limiter.tryAcquire('help:s1', 1, WINDOW_MS)).toBe(false);
    expect(await limiter.tryAcquire('help:s2', 1, WINDOW_MS)).toBe(true);
  });

  it('slides: an alert leaves the budget exactly one window after it was sent', async () => {
    const clock = fakeClock();
    const limiter = new InMemoryNotificationRateLimiter(clock.now);
    expect(await limiter.tryAcquire('k', 2, WINDOW_MS)).toBe(true);
    clock.advance(WINDOW_MS / 2);
    expect(await limiter.tryAcquire('k', 2, WINDOW_MS)).toBe(true);
    expect(await limiter.tryAcquire('k', 2, WINDOW_MS)).toBe(false);
    clock.advance(WINDOW_MS / 2 - 1);
    expect(await limiter.tryAcquire('k', 2, WINDOW_MS)).toBe(false);
    clock.advance(1);
    expect(await limiter.tryAcquire('k', 2, WINDOW_MS)).toBe(true);
    expect(await limiter.tryAcquire('k', 2, WINDOW_MS)).toBe(false);
  });

  it('suppressed attempts do not extend the window', async () => {
    const clock = fakeClock();
    const limiter = new InMemoryNotificationRateLimiter(clock.now);
    await limiter.tryAcquire('help:s1', 1, WINDOW_MS);
    for (let i = 0; i < 10; i++) {
      clock.advance(WINDOW_MS / 20);
      expect(await limiter.tryAcquire('help:s1', 1, WINDOW_MS)).toBe(false);
    }
    clock.advance(WINDOW_MS / 2);
    expect(await limiter.tryAcquire('help:s1', 1, WINDOW_MS)).toBe(true);
  });

  it('forgets stale keys so per-session keys do not pile up', async () => {
    const clock = fakeClock();
    const limiter = new InMemoryNotificationRateLimiter(clock.now);
    const manySessions = 1_500;
    for (let i = 0; i < manySessions; i++) await limiter.tryAcquire(`help:s${i}`, 1, WINDOW_MS);
    expect(limiter.size).toBe(manySessions);
    clock.advance(WINDOW_MS);
    await limiter.tryAcquire('help:fresh', 1, WINDOW_MS);
    expect(limiter.size).toBe(1);
  });
});
