import { firstValueFrom, takeWhile, toArray } from 'rxjs';
import type { ReplyEvent } from '../llm.types';
import { abortableStream } from './provider-stream';

/** A producer that emits what it is told and hands out its abort signal. */
function producer(events: ReplyEvent[], holdOpen: boolean) {
  let signal: AbortSignal | undefined;
  let release = () => undefined as void;
  const stream = abortableStream(async (emit, abortSignal) => {
    signal = abortSignal;
    for (const event of events) emit(event);
    if (holdOpen) await new Promise<void>((resolve) => (release = resolve));
  });
  return { stream, signal: () => signal, release: () => release() };
}

describe('abortableStream', () => {
  it('aborts the upstream request when the subscriber leaves before the end', async () => {
    const { stream, signal, release } = producer([{ kind: 'delta', text: 'a' }], true);
    const seen = await firstValueFrom(stream);
    expect(seen).toEqual({ kind: 'delta', text: 'a' });
    expect(signal()?.aborted).toBe(true);
    release();
  });

  it('leaves a request alone whose reply has ended (the body is read: nothing to abort)', async () => {
    const { stream, signal, release } = producer([{ kind: 'delta', text: 'a' }, { kind: 'end' }], true);
    // The consumer unsubscribes synchronously on `end`, before the producer has returned.
    const events = await firstValueFrom(
      stream.pipe(
        takeWhile((event) => event.kind !== 'end', true),
        toArray(),
      ),
    );
    expect(events.map((event) => event.kind)).toEqual(['delta', 'end']);
    expect(signal()?.aborted).toBe(false);
    release();
  });

  it('passes deltas emitted together on as one, before the event that follows them', async () => {
    const { stream } = producer(
      [
        { kind: 'delta', text: 'Hel' },
        { kind: 'delta', text: 'lo' },
        { kind: 'usage', promptTokens: 1, completionTokens: 2 },
        { kind: 'delta', text: '!' },
        { kind: 'end' },
      ],
      false,
    );
    expect(await firstValueFrom(stream.pipe(toArray()))).toEqual([
      { kind: 'delta', text: 'Hello' },
      { kind: 'usage', promptTokens: 1, completionTokens: 2 },
      { kind: 'delta', text: '!' },
      { kind: 'end' },
    ]);
  });

  it('passes deltas emitted at different times on one by one, each at once', async () => {
    const seen: ReplyEvent[] = [];
    let next = () => undefined as void;
    const stream = abortableStream(async (emit) => {
      emit({ kind: 'delta', text: 'a' });
      // Not before the first delta is out: a lone delta is not held back for a later one.
      await new Promise<void>((resolve) => (next = resolve));
      emit({ kind: 'delta', text: 'b' });
      emit({ kind: 'end' });
    });
    const done = new Promise<void>((resolve) =>
      stream.subscribe({ next: (event) => seen.push(event), complete: resolve }),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([{ kind: 'delta', text: 'a' }]);
    next();
    await done;
    expect(seen).toEqual([{ kind: 'delta', text: 'a' }, { kind: 'delta', text: 'b' }, { kind: 'end' }]);
  });

  it('delivers the text received before a failure, then the failure', async () => {
    const seen: ReplyEvent[] = [];
    const stream = abortableStream(async (emit) => {
      emit({ kind: 'delta', text: 'par' });
      emit({ kind: 'delta', text: 'tial' });
      throw new Error('cut');
    });
    const failure = await new Promise<unknown>((resolve) =>
      stream.subscribe({ next: (event) => seen.push(event), error: resolve }),
    );
    expect(seen).toEqual([{ kind: 'delta', text: 'partial' }]);
    expect((failure as Error).message).toBe('cut');
  });
});
