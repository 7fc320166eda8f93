import { InProcessRateLimiter } from './rate-limiter';

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

describe('InProcessRateLimiter', () => {
  it('allows `limit` hits per key per window, then refuses; keys are apart', () => {
    const limiter = new InProcessRateLimiter(fakeClock().now);
    const answers = [];
    for (let i = 0; i < 7; i++) answers.push(limiter.hit('notify:llm:a', 5, WINDOW_MS).allowed);
    expect(answers).toEqual([true, true, true, true, true, false, false]);
    expect(limiter.hit('notify:llm:b', 5, WINDOW_MS).allowed).toBe(true);
  });

  it('slides on its clock: a hit leaves the budget exactly one window after it was allowed', () => {
    const clock = fakeClock();
    const limiter = new InProcessRateLimiter(clock.now);
    expect(limiter.hit('k', 2, WINDOW_MS).allowed).toBe(true);
    clock.advance(WINDOW_MS / 2);
    expect(limiter.hit('k', 2, WINDOW_MS).allowed).toBe(true);
    expect(limiter.hit('k', 2, WINDOW_MS)).toEqual({ allowed: false, retryAfterMs: WINDOW_MS / 2 });
    clock.advance(WINDOW_MS / 2 - 1);
    expect(limiter.hit('k', 2, WINDOW_MS).allowed).toBe(false);
    clock.advance(1);
    expect(limiter.hit('k', 2, WINDOW_MS).allowed).toBe(true);
    expect(limiter.hit('k', 2, WINDOW_MS).allowed).toBe(false);
  });

  it('an explicit time overrides the clock', () => {
    const limiter = new InProcessRateLimiter(() => 0);
    expect(limiter.hit('k', 1, WINDOW_MS).allowed).toBe(true);
    expect(limiter.hit('k', 1, WINDOW_MS, WINDOW_MS).allowed).toBe(true);
  });

  it('forgets stale keys so per-session keys do not pile up', () => {
    const clock = fakeClock();
    const limiter = new InProcessRateLimiter(clock.now);
    const manySessions = 1_500;
    for (let i = 0; i < manySessions; i++) limiter.hit(`notify:help:s${i}`, 1, WINDOW_MS);
    expect(limiter.size).toBe(manySessions);
    clock.advance(WINDOW_MS);
    limiter.hit('notify:help:fresh', 1, WINDOW_MS);
    expect(limiter.size).toBe(1);
  });
});
