import type { StoredMessage } from '@chatbox/storage';
import { withoutReplacedTurns } from './replaced-turns';

let seq = 0;
function message(
  id: string,
  sender: StoredMessage['sender'],
  content: string,
  meta?: Record<string, string>,
  type: StoredMessage['type'] = sender === 'ai' ? 'ai_response' : 'user_message',
): StoredMessage {
  return { id, seq: seq++, type, content, sender, timestamp: new Date(), ...(meta ? { meta } : {}) };
}

const ids = (messages: StoredMessage[]) => messages.map((entry) => entry.id);

describe('withoutReplacedTurns (the context after Regenerate / Retry)', () => {
  beforeEach(() => (seq = 0));

  it('leaves out the named reply and the question it answered; the re-sent question stays', () => {
    const messages = [
      message('q0', 'user', 'Hi'),
      message('r0', 'ai', 'Hello'),
      message('q1', 'user', 'Ship to Norway?'),
      message('r1', 'ai', 'No.'),
      message('q2', 'user', 'Ship to Norway?', { regenerate_of: 'r1' }),
    ];
    expect(ids(withoutReplacedTurns(messages))).toEqual(['q0', 'r0', 'q2']);
  });

  it('a chain of regenerations keeps only the newest turn, also for the questions after it', () => {
    const messages = [
      message('q1', 'user', 'Why?'),
      message('r1', 'ai', 'First'),
      message('q2', 'user', 'Why?', { regenerate_of: 'r1' }),
      message('r2', 'ai', 'Second'),
      message('q3', 'user', 'Why?', { regenerate_of: 'r2' }),
      message('r3', 'ai', 'Third'),
      message('q4', 'user', 'And then?'),
    ];
    expect(ids(withoutReplacedTurns(messages))).toEqual(['q3', 'r3', 'q4']);
  });

  it('Retry of a reply that failed before its first word (never stored): the identical question before goes', () => {
    const messages = [
      message('q1', 'user', 'Delivery time?'),
      message('q2', 'user', 'Delivery time?', { regenerate_of: 'lost' }),
    ];
    expect(ids(withoutReplacedTurns(messages))).toEqual(['q2']);
    const different = [
      message('q3', 'user', 'Other text'),
      message('q4', 'user', 'Delivery time?', { regenerate_of: 'lost' }),
    ];
    expect(ids(withoutReplacedTurns(different))).toEqual(['q3', 'q4']);
  });

  it('ignores a name that is not an earlier AI reply, and regenerate_of on anything but a user text', () => {
    const messages = [
      message('q1', 'user', 'Hello'),
      message('r1', 'ai', 'Hi'),
      message('q2', 'user', 'Names a question', { regenerate_of: 'q1' }),
      message('a1', 'admin', 'Staff', { regenerate_of: 'r1' }),
      message('f1', 'user', '', { regenerate_of: 'r1' }, 'file_upload'),
      message('q3', 'user', 'Names a later reply', { regenerate_of: 'r2' }),
      message('r2', 'ai', 'Later'),
    ];
    expect(ids(withoutReplacedTurns(messages))).toEqual(ids(messages));
  });
});
