import { concatWith, defer, EMPTY, MonoTypeOperatorFunction, Observable, throwError, timer } from 'rxjs';
import { mergeMap, mergeWith, takeWhile, tap } from 'rxjs/operators';
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

const expire = (what: ReplyTimeout['what'], ms: number) =>
  timer(ms).pipe(mergeMap(() => throwError(() => new ReplyTimeout(what, ms))));

/** A provider stream that completes without its end marker was cut: an error, not a normal end. */
export function requireEndMarker(): MonoTypeOperatorFunction<ReplyEvent> {
  return (source) =>
    defer(() => {
      let ended = false;
      return source.pipe(
        tap((event) => (ended ||= isFinal(event))),
        concatWith(
          defer(() =>
            ended
              ? EMPTY
              : throwError(
                  () => new LlmProviderError('truncated', 'provider stream completed without an end'),
                ),
          ),
        ),
      );
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

/** Fails with `ReplyTimeout` unless the final event arrives within `ms`; completes after it. */
export function finishedWithin(ms: number): MonoTypeOperatorFunction<ReplyEvent> {
  return (source) =>
    source.pipe(
      mergeWith(expire('whole reply', ms)),
      takeWhile((event) => !isFinal(event), true),
    );
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
