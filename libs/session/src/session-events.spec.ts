import { instant } from './session-events';

describe('instant', () => {
  afterEach(() => jest.useRealTimers());

  it('is the RFC 3339 text of the given date', () => {
    expect(instant(new Date('2026-12-02T03:04:05.678Z'))).toBe('2026-12-02T03:04:05.678Z');
  });

  it('is now when no date is given, to the millisecond, also after the clock moves on', () => {
    jest.useFakeTimers({ now: new Date('2026-12-02T03:04:05.678Z') });
    expect(instant()).toBe('2026-12-02T03:04:05.678Z');
    expect(instant()).toBe('2026-12-02T03:04:05.678Z');
    jest.advanceTimersByTime(1);
    expect(instant()).toBe('2026-12-02T03:04:05.679Z');
    jest.setSystemTime(new Date('2027-01-01T00:00:00.000Z'));
    expect(instant()).toBe('2027-01-01T00:00:00.000Z');
    // A clock set back (NTP) is followed as well.
    jest.setSystemTime(new Date('2026-12-02T03:04:05.678Z'));
    expect(instant()).toBe('2026-12-02T03:04:05.678Z');
  });
});
