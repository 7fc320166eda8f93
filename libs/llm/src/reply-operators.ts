import { concatWith, connect, defer, EMPTY, merge, MonoTypeOperatorFunction, throwError, timer } from 'rxjs';
import { filter, mergeMap, mergeWith, takeUntil, takeWhile, tap } from 'rxjs/operators';
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

/** Fails with `ReplyTimeout` unless text or a file (or the end) arrives within `ms` (across retries). */
export function firstOutputWithin(ms: number): MonoTypeOperatorFunction<ReplyEvent> {
  return connect((events) =>
    merge(
      events,
      expire('first token', ms).pipe(
        takeUntil(events.pipe(filter((event) => isOutput(event) || isFinal(event)))),
      ),
    ),
  );
}

/** Fails with `ReplyTimeout` unless the final event arrives within `ms`; completes after it. */
export function finishedWithin(ms: number): MonoTypeOperatorFunction<ReplyEvent> {
  return (source) =>
    source.pipe(
      mergeWith(expire('whole reply', ms)),
      takeWhile((event) => !isFinal(event), true),
    );
}
