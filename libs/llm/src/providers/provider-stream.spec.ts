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
});
