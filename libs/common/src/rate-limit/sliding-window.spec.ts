import { SlidingWindowCounter } from './sliding-window';

describe('SlidingWindowCounter', () => {
  it('allows `limit` hits per window and tells how long to wait', () => {
    const window = new SlidingWindowCounter();
    expect(window.hit('k', 2, 1000, 0).allowed).toBe(true);
    expect(window.hit('k', 2, 1000, 400).allowed).toBe(true);
    expect(window.hit('k', 2, 1000, 500)).toEqual({ allowed: false, retryAfterMs: 500 });
    expect(window.hit('k', 2, 1000, 1001).allowed).toBe(true);
  });

  it('refused hits do not extend the wait', () => {
    const window = new SlidingWindowCounter();
    window.hit('k', 1, 1000, 0);
    for (let at = 1; at < 1000; at += 100) window.hit('k', 1, 1000, at);
    expect(window.hit('k', 1, 1000, 1000).allowed).toBe(true);
  });

  it('forgets keys whose window has passed once many keys are held', () => {
    const window = new SlidingWindowCounter();
    for (let user = 0; user < 1000; user++) window.hit(`user-${user}`, 5, 1000, 0);
    expect(window.size).toBe(1000);
    window.hit('late', 5, 1000, 5000);
    expect(window.size).toBe(1);
  });
});
