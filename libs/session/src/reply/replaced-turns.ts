import type { StoredMessage } from '@chatbox/storage';

/**
 * Metadata key of a `user_message` that asks again for an AI reply (the web client's Regenerate and
 * Retry): its value names the replaced reply. The gateway checks that it has the shape of a message id.
 */
export const REGENERATE_OF_KEY = 'regenerate_of';

/**
 * The conversation as the user sees it after Regenerate or Retry, for the model's context. A user's
 * `user_message` carrying `regenerate_of` re-sends a question in place of an earlier turn, so that
 * turn leaves the context: the named AI reply and the user message it answered (the user's nearest
 * message before it). Otherwise the model would read the replaced reply and the question twice.
 *
 * A name that is no AI reply among `messages` of this session changes nothing, with one exception:
 * a reply that failed before its first word is never stored (SPEC 4.5.7 stores what arrived), so
 * Retry names a reply that cannot be found; then the question it answered is the message right before
 * the re-sent one, left out only when it is the user's identical text. The stored history keeps
 * everything: this only shapes what the model reads.
 *
 * `messages` are one session's, in `seq` order (as `recentMessages` returns them).
 */
export function withoutReplacedTurns(messages: readonly StoredMessage[]): StoredMessage[] {
  const byId = new Map(messages.map((message) => [message.id, message]));
  const replaced = new Set<string>();
  messages.forEach((message, index) => {
    const replacedId = regenerateOf(message);
    if (replacedId === undefined) return;
    const reply = byId.get(replacedId);
    if (reply) {
      if (reply.sender !== 'ai' || reply.seq >= message.seq) return;
      replaced.add(reply.id);
      const question = messages.findLast((earlier) => earlier.seq < reply.seq && earlier.sender === 'user');
      if (question) replaced.add(question.id);
      return;
    }
    const previous = messages[index - 1];
    if (
      previous?.sender === 'user' &&
      previous.type === 'user_message' &&
      previous.content === message.content
    )
      replaced.add(previous.id);
  });
  return replaced.size === 0 ? [...messages] : messages.filter((message) => !replaced.has(message.id));
}

function regenerateOf(message: StoredMessage): string | undefined {
  if (message.sender !== 'user' || message.type !== 'user_message') return undefined;
  const value = message.meta?.[REGENERATE_OF_KEY];
  return value ? value : undefined;
}
