import { Principal } from '@chatbox/common';
import type { ReplyStreamEvent, SessionEvent } from '../session-events';
import type { ClientConnection } from './client-connection';
import { deliverReplyFrameOnce } from './session-broadcaster';

function socket(): ClientConnection & { sent: SessionEvent[] } {
  const sent: SessionEvent[] = [];
  return {
    id: 'c1',
    principal: { userId: 'u1', roles: [], name: 'u1', isAdmin: false } satisfies Principal,
    deliveredSeq: new Map(),
    sent,
    send: (event) => sent.push(event),
    close: () => undefined,
  };
}

const at = '2024-05-01T10:00:00.000Z';
const frame = (seq: number, done = false): ReplyStreamEvent =>
  done
    ? { kind: 'replyDone', sessionId: 's1', messageId: 'm1', seq, ending: { status: 'interrupted' }, at }
    : { kind: 'replyDelta', sessionId: 's1', messageId: 'm1', modelId: 'demo', seq, text: `t${seq}`, at };
const seqAndKind = (event: SessionEvent) => ('seq' in event ? [event.seq, event.kind] : []);

describe('deliverReplyFrameOnce', () => {
  it('sends each seq once, in the order first seen', () => {
    const connection = socket();
    for (const seq of [0, 1, 1, 0, 2]) deliverReplyFrameOnce(connection, frame(seq));
    expect(connection.sent.map((event) => seqAndKind(event)[0])).toEqual([0, 1, 2]);
  });

  it('sends the done frame even to a socket that had frames past its seq, once, and nothing after it', () => {
    const connection = socket();
    for (const seq of [0, 1, 2, 3]) deliverReplyFrameOnce(connection, frame(seq));
    // The streaming instance died before frames 2-3 reached the buffer: the reply is ended at seq 2.
    deliverReplyFrameOnce(connection, frame(2, true));
    deliverReplyFrameOnce(connection, frame(2, true));
    deliverReplyFrameOnce(connection, frame(4));
    deliverReplyFrameOnce(connection, frame(5, true));
    expect(connection.sent.map(seqAndKind)).toEqual([
      [0, 'replyDelta'],
      [1, 'replyDelta'],
      [2, 'replyDelta'],
      [3, 'replyDelta'],
      [2, 'replyDone'],
    ]);
  });
});
