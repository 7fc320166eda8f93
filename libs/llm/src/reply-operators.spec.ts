import { Subject } from 'rxjs';
import type { ReplyEvent } from './llm.types';
import { beforeFinal, firstOutputWithin, ReplyTimeout } from './reply-operators';

/** Subscribes to `events` through `operator`, recording what comes out. */
function observe(events: Subject<ReplyEvent>, ms: number) {
  const seen: ReplyEvent[] = [];
  const outcome: { error?: unknown; complete?: boolean } = {};
  const subscription = events.pipe(firstOutputWithin(ms)).subscribe({
    next: (event) => seen.push(event),
    error: (error: unknown) => (outcome.error = error),
    complete: () => (outcome.complete = true),
  });
  return { seen, outcome, subscription };
}

describe('firstOutputWithin', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('fails with ReplyTimeout when neither text nor the end arrives in time', () => {
    const events = new Subject<ReplyEvent>();
    const { seen, outcome } = observe(events, 300);
    events.next({ kind: 'usage', promptTokens: 1, completionTokens: 0 });
    jest.advanceTimersByTime(300);
    expect(outcome.error).toBeInstanceOf(ReplyTimeout);
    expect((outcome.error as ReplyTimeout).what).toBe('first token');
    expect(seen).toHaveLength(1);
    expect(events.observed).toBe(false);
  });

  it('lets a reply take its time once the first text arrived', () => {
    const events = new Subject<ReplyEvent>();
    const { seen, outcome } = observe(events, 300);
    jest.advanceTimersByTime(299);
    events.next({ kind: 'delta', text: 'a' });
    jest.advanceTimersByTime(10_000);
    events.next({ kind: 'delta', text: 'b' });
    events.next({ kind: 'end' });
    events.complete();
    expect(outcome).toEqual({ complete: true });
    expect(seen.map((event) => event.kind)).toEqual(['delta', 'delta', 'end']);
  });

  it('is satisfied by the end (an empty reply) and leaves no timer behind, nor after unsubscribing', () => {
    const ended = new Subject<ReplyEvent>();
    observe(ended, 300);
    ended.next({ kind: 'end' });
    expect(jest.getTimerCount()).toBe(0);
    const left = new Subject<ReplyEvent>();
    const { subscription } = observe(left, 300);
    expect(jest.getTimerCount()).toBe(1);
    subscription.unsubscribe();
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('beforeFinal', () => {
  it('emits what it is given just before the final event, nothing before the others', () => {
    const events = new Subject<ReplyEvent>();
    const seen: ReplyEvent[] = [];
    events
      .pipe(
        beforeFinal((final) => [
          { kind: 'usage', promptTokens: final.kind === 'end' ? 1 : 2, completionTokens: 3 },
        ]),
      )
      .subscribe((event) => seen.push(event));
    events.next({ kind: 'delta', text: 'a' });
    events.next({ kind: 'end' });
    expect(seen).toEqual([
      { kind: 'delta', text: 'a' },
      { kind: 'usage', promptTokens: 1, completionTokens: 3 },
      { kind: 'end' },
    ]);
  });
});
