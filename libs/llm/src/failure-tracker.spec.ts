import {
  LLM_FAILING_CONSECUTIVE,
  LLM_FAILING_MIN_REQUESTS,
  LLM_FAILING_WINDOW_MS,
  LlmFailureTracker,
  ProviderFailingAlert,
  ProviderRecovered,
} from './failure-tracker';

function trackerAt(start = 1_000_000) {
  let now = start;
  const tracker = new LlmFailureTracker(() => now);
  const alerts: ProviderFailingAlert[] = [];
  const recoveries: ProviderRecovered[] = [];
  tracker.providerFailing$.subscribe((alert) => alerts.push(alert));
  tracker.providerRecovered$.subscribe((event) => recoveries.push(event));
  return { tracker, alerts, recoveries, advance: (ms: number) => (now += ms) };
}

describe('LlmFailureTracker', () => {
  it(`alerts after ${LLM_FAILING_CONSECUTIVE} consecutive failures, once per episode`, () => {
    const { tracker, alerts } = trackerAt();
    for (let i = 0; i < LLM_FAILING_CONSECUTIVE - 1; i++) tracker.record('p', false, `u${i}`);
    expect(alerts).toHaveLength(0);
    tracker.record('p', false, 'u0');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      provider: 'p',
      reason: 'consecutive',
      consecutiveFailures: LLM_FAILING_CONSECUTIVE,
      affectedUsers: LLM_FAILING_CONSECUTIVE - 1,
    });
    tracker.record('p', false);
    expect(alerts).toHaveLength(1);
    expect(tracker.isFailing('p')).toBe(true);
  });

  it('keeps providers apart', () => {
    const { tracker, alerts } = trackerAt();
    for (let i = 0; i < LLM_FAILING_CONSECUTIVE - 1; i++) {
      tracker.record('a', false);
      tracker.record('b', false);
    }
    expect(alerts).toHaveLength(0);
  });

  it('alerts at ≥ 50 % failures over the window once it holds enough replies', () => {
    const { tracker, alerts } = trackerAt();
    for (let i = 0; i < LLM_FAILING_MIN_REQUESTS / 2; i++) {
      tracker.record('p', true);
      if (i < LLM_FAILING_MIN_REQUESTS / 2 - 1) tracker.record('p', false);
    }
    expect(alerts).toHaveLength(0);
    tracker.record('p', false);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ reason: 'rate', failureRate: 0.5, requests: LLM_FAILING_MIN_REQUESTS });
  });

  it('forgets outcomes older than the window', () => {
    const { tracker, alerts, advance } = trackerAt();
    for (let i = 0; i < LLM_FAILING_MIN_REQUESTS; i++) tracker.record('p', i % 2 === 0);
    expect(alerts).toHaveLength(1);
    const fresh = trackerAt();
    for (let i = 0; i < LLM_FAILING_MIN_REQUESTS - 1; i++) fresh.tracker.record('p', i % 2 === 0);
    fresh.advance(LLM_FAILING_WINDOW_MS + 1);
    fresh.tracker.record('p', false);
    expect(fresh.alerts).toHaveLength(0);
    advance(0);
  });

  it('announces recovery at the first success once neither condition holds, then can alert again', () => {
    const { tracker, alerts, recoveries, advance } = trackerAt();
    for (let i = 0; i < LLM_FAILING_CONSECUTIVE; i++) tracker.record('p', false);
    expect(alerts).toHaveLength(1);
    advance(LLM_FAILING_WINDOW_MS + 1);
    tracker.record('p', true);
    expect(recoveries).toHaveLength(1);
    expect(tracker.isFailing('p')).toBe(false);
    for (let i = 0; i < LLM_FAILING_CONSECUTIVE; i++) tracker.record('p', false);
    expect(alerts).toHaveLength(2);
  });
});
