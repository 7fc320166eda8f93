import { ReplyBuffer } from './reply-buffer';

describe('ReplyBuffer', () => {
  const buffer = () => new ReplyBuffer('m1', 's1', 'gpt', 7, 10);

  it('numbers deltas from 0 and gives the done frame the next seq', () => {
    const reply = buffer();
    expect(reply.addDelta('ab').seq).toBe(0);
    const second = reply.addDelta('cd');
    expect(second).toEqual({
      kind: 'replyDelta',
      sessionId: 's1',
      messageId: 'm1',
      modelId: 'gpt',
      seq: 1,
      text: 'cd',
      at: expect.any(String),
    });
    const done = reply.addDone({ status: 'complete' });
    expect(done).toMatchObject({
      kind: 'replyDone',
      messageId: 'm1',
      seq: 2,
      ending: { status: 'complete' },
    });
    expect(reply.text).toBe('abcd');
  });

  it('replays exactly the frames after the last seq a socket had', () => {
    const reply = buffer();
    ['a', 'b', 'c'].forEach((text) => reply.addDelta(text));
    expect(reply.framesAfter(0).map((frame) => frame.kind === 'replyDelta' && frame.text)).toEqual([
      'b',
      'c',
    ]);
    expect(reply.framesAfter(-1)).toHaveLength(3);
    expect(reply.framesAfter(2)).toEqual([]);
  });

  it('catches a binding socket up with the text so far at the last seq, nothing before any text', () => {
    const reply = buffer();
    expect(reply.catchUp()).toBeUndefined();
    reply.addDelta('hel');
    reply.addDelta('lo');
    expect(reply.catchUp()).toMatchObject({ kind: 'replyCatchUp', messageId: 'm1', text: 'hello', seq: 1 });
  });

  it('bounds the reply in UTF-8 bytes', () => {
    const reply = buffer();
    reply.addDelta('12345678');
    expect(reply.fits('90')).toBe(true);
    expect(reply.fits('é')).toBe(true); // 2 bytes: exactly at the bound
    expect(reply.fits('9é')).toBe(false);
  });

  it('is stored at its place among the session messages', () => {
    const reply = buffer();
    reply.addDelta('x');
    expect(reply.message({ status: 'complete' })).toMatchObject({
      id: 'm1',
      seq: 7,
      type: 'ai_response',
      sender: 'ai',
      content: 'x',
      meta: { status: 'complete' },
    });
  });
});
