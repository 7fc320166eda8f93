import { MonoTypeOperatorFunction, Observable } from 'rxjs';
import { LlmProviderError } from './llm-errors';
import type { ReplyEvent } from './llm.types';

export type FinalEvent = Extract<ReplyEvent, { kind: 'end' | 'error' }>;

export function isFinal(event: ReplyEvent): event is FinalEvent {
  return event.kind === 'end' || event.kind === 'error';
}

/** Text or a file reached the user: from here on nothing is retried (SPEC 15). */
export function isOutput(event: ReplyEvent): boolean {
  return event.kind === 'delta' || event.kind === 'file';
}

/** The reply did not arrive in time (its first token, or all of it). */
export class ReplyTimeout extends Error {
  constructor(
    readonly what: 'first token' | 'whole reply',
    readonly ms: number,
  ) {
    super(what === 'first token' ? `no first token within ${ms} ms` : `reply not finished within ${ms} ms`);
    this.name = 'ReplyTimeout';
  }
}

/*
 * The operators below are written as one subscriber each rather than composed from rxjs' own
 * (`defer`, `tap`, `concatWith`, `mergeWith` with a `timer`, `takeWhile`): every reply subscribes
 * to all of them, and in a burst of new chats that set-up stood between each message and its
 * provider request (issue 12, docs/performance.md).
 */

/** A provider stream that completes without its end marker was cut: an error, not a normal end. */
export function requireEndMarker(): MonoTypeOperatorFunction<ReplyEvent> {
  return (source) =>
    new Observable<ReplyEvent>((subscriber) => {
      // Per subscription: a retry starts again with nothing seen.
      let ended = false;
      return source.subscribe({
        next: (event) => {
          ended ||= isFinal(event);
          subscriber.next(event);
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          if (ended) subscriber.complete();
          else
            subscriber.error(new LlmProviderError('truncated', 'provider stream completed without an end'));
        },
      });
    });
}

/**
 * Fails with `ReplyTimeout` unless text or a file (or the end) arrives within `ms` (across retries).
 * One timer per reply, cleared by the first output; every later event passes straight through
 * (no multicast of each chunk to a watcher that has nothing left to watch).
 */
export function firstOutputWithin(ms: number): MonoTypeOperatorFunction<ReplyEvent> {
  return (source) =>
    new Observable<ReplyEvent>((subscriber) => {
      let deadline: ReturnType<typeof setTimeout> | undefined = setTimeout(
        () => subscriber.error(new ReplyTimeout('first token', ms)),
        ms,
      );
      const settle = () => {
        clearTimeout(deadline);
        deadline = undefined;
      };
      const subscription = source.subscribe({
        next: (event) => {
          if (deadline !== undefined && (isOutput(event) || isFinal(event))) settle();
          subscriber.next(event);
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      });
      return () => {
        settle();
        subscription.unsubscribe();
      };
    });
}

/**
 * Fails with `ReplyTimeout` unless the final event arrives within `ms`; completes after it (the
 * source is unsubscribed). A source that completes without a final event still waits for the
 * deadline: only the final event ends a reply in time.
 */
export function finishedWithin(ms: number): MonoTypeOperatorFunction<ReplyEvent> {
  return (source) =>
    new Observable<ReplyEvent>((subscriber) => {
      const deadline = setTimeout(() => subscriber.error(new ReplyTimeout('whole reply', ms)), ms);
      const subscription = source.subscribe({
        next: (event) => {
          subscriber.next(event);
          if (isFinal(event)) subscriber.complete();
        },
        error: (error: unknown) => subscriber.error(error),
      });
      return () => {
        clearTimeout(deadline);
        subscription.unsubscribe();
      };
    });
}

/**
 * Emits `extra(final)` just before each final event. A plain pass-through otherwise: no inner
 * subscription per event, as `concatMap` to an array would make for every chunk of every reply.
 */
export function beforeFinal(
  extra: (final: FinalEvent) => ReplyEvent[],
): MonoTypeOperatorFunction<ReplyEvent> {
  return (source) =>
    new Observable<ReplyEvent>((subscriber) =>
      source.subscribe({
        next: (event) => {
          if (isFinal(event)) for (const added of extra(event)) subscriber.next(added);
          subscriber.next(event);
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      }),
    );
}
