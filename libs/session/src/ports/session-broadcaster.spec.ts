import { Principal } from '@chatbox/common';
import { ChatEvent, chatEvent } from '../chat-event';
import type { ClientConnection } from './client-connection';
import { deliverReplyFrameOnce } from './session-broadcaster';

function socket(): ClientConnection & { sent: ChatEvent[] } {
  const sent: ChatEvent[] = [];
  return {
    id: 'c1',
    principal: { userId: 'u1', roles: [], name: 'u1', isAdmin: false } satisfies Principal,
    deliveredSeq: new Map(),
    sent,
    send: (event) => sent.push(event),
    close: () => undefined,
  };
}

const frame = (seq: number, done = false) =>
  chatEvent('ai_response', 'ai', {
    content: done ? undefined : `t${seq}`,
    metadata: { message_id: 'm1', seq: String(seq), streaming: 'true', done: String(done) },
  });

describe('deliverReplyFrameOnce', () => {
  it('sends each seq once, in the order first seen', () => {
    const connection = socket();
    for (const seq of [0, 1, 1, 0, 2]) deliverReplyFrameOnce(connection, 'm1', seq, frame(seq));
    expect(connection.sent.map((event) => event.metadata?.seq)).toEqual(['0', '1', '2']);
  });

  it('sends the done frame even to a socket that had frames past its seq, once, and nothing after it', () => {
    const connection = socket();
    for (const seq of [0, 1, 2, 3]) deliverReplyFrameOnce(connection, 'm1', seq, frame(seq));
    // The streaming instance died before frames 2-3 reached the buffer: the reply is ended at seq 2.
    deliverReplyFrameOnce(connection, 'm1', 2, frame(2, true));
    deliverReplyFrameOnce(connection, 'm1', 2, frame(2, true));
    deliverReplyFrameOnce(connection, 'm1', 4, frame(4));
    deliverReplyFrameOnce(connection, 'm1', 5, frame(5, true));
    expect(connection.sent.map((event) => [event.metadata?.seq, event.metadata?.done])).toEqual([
      ['0', 'false'],
      ['1', 'false'],
      ['2', 'false'],
      ['3', 'false'],
      ['2', 'true'],
    ]);
  });
});
