import { defer, retry, Subject } from 'rxjs';
import { LlmProviderError } from './llm-errors';
import type { ReplyEvent } from './llm.types';
import {
  beforeFinal,
  finishedWithin,
  firstOutputWithin,
  ReplyTimeout,
  requireEndMarker,
} from './reply-operators';

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

describe('requireEndMarker', () => {
  it('passes a stream that ended with its final event, and fails one cut short as truncated', () => {
    const ended: ReplyEvent[] = [];
    const whole = new Subject<ReplyEvent>();
    let completed = false;
    whole
      .pipe(requireEndMarker())
      .subscribe({ next: (event) => ended.push(event), complete: () => (completed = true) });
    whole.next({ kind: 'delta', text: 'a' });
    whole.next({ kind: 'end' });
    whole.complete();
    expect(ended.map((event) => event.kind)).toEqual(['delta', 'end']);
    expect(completed).toBe(true);

    const cut = new Subject<ReplyEvent>();
    let failure: unknown;
    cut.pipe(requireEndMarker()).subscribe({ error: (error: unknown) => (failure = error) });
    cut.next({ kind: 'delta', text: 'a' });
    cut.complete();
    expect(failure).toBeInstanceOf(LlmProviderError);
    expect((failure as LlmProviderError).kind).toBe('truncated');
  });

  it('judges each attempt on its own: an end seen by a failed attempt does not excuse the next one', async () => {
    let attempt = 0;
    const attempts = defer(() => {
      attempt++;
      const events = new Subject<ReplyEvent>();
      queueMicrotask(() => {
        if (attempt === 1) {
          events.next({ kind: 'end' });
          events.error(new Error('connection reset'));
        } else events.complete();
      });
      return events;
    });
    const seen: string[] = [];
    attempts.pipe(requireEndMarker(), retry(1)).subscribe({
      next: (event) => seen.push(event.kind),
      error: (error: unknown) => seen.push((error as LlmProviderError).kind),
      complete: () => seen.push('complete'),
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(attempt).toBe(2);
    expect(seen).toEqual(['end', 'truncated']);
  });
});

describe('finishedWithin', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('completes with the final event, lets go of the source and leaves no timer', () => {
    const events = new Subject<ReplyEvent>();
    const seen: string[] = [];
    events.pipe(finishedWithin(1_000)).subscribe({
      next: (event) => seen.push(event.kind),
      complete: () => seen.push('complete'),
    });
    expect(jest.getTimerCount()).toBe(1);
    events.next({ kind: 'delta', text: 'a' });
    events.next({ kind: 'end' });
    expect(seen).toEqual(['delta', 'end', 'complete']);
    expect(events.observed).toBe(false);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('fails with ReplyTimeout when the final event is late, also after a source that completed without it', () => {
    for (const completes of [false, true]) {
      const events = new Subject<ReplyEvent>();
      const outcome: { error?: unknown; complete?: boolean } = {};
      events.pipe(finishedWithin(1_000)).subscribe({
        error: (error: unknown) => (outcome.error = error),
        complete: () => (outcome.complete = true),
      });
      events.next({ kind: 'delta', text: 'a' });
      if (completes) events.complete();
      jest.advanceTimersByTime(999);
      expect(outcome).toEqual({});
      jest.advanceTimersByTime(1);
      expect(outcome.error).toBeInstanceOf(ReplyTimeout);
      expect((outcome.error as ReplyTimeout).what).toBe('whole reply');
      expect(events.observed).toBe(false);
    }
  });

  it('leaves no timer behind when unsubscribed', () => {
    const events = new Subject<ReplyEvent>();
    const subscription = events.pipe(finishedWithin(1_000)).subscribe();
    subscription.unsubscribe();
    expect(jest.getTimerCount()).toBe(0);
    expect(events.observed).toBe(false);
  });
});
