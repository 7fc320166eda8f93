import type { ChatTurn, ReplyRequest } from './llm.types';

/**
 * How an admin's message reaches a model. Providers know only `user` and `assistant` roles (the
 * OpenAI `name` field is ignored or rejected by many compatible servers), so a staff message is
 * sent as an assistant turn whose text starts with this marker. The model then sees that a human
 * answered on the service's side and can continue the conversation consistently.
 */
export const STAFF_PREFIX = '[Staff] ';

/** Characters per token for the usage estimate used when a provider reports none. */
export const CHARS_PER_TOKEN = 4;

export interface ProviderTurn {
  role: 'user' | 'assistant';
  content: string;
}

/** A turn as sent to a provider: staff turns become assistant turns with `STAFF_PREFIX`. */
export function toProviderTurn(turn: ChatTurn): ProviderTurn {
  if (turn.staff) return { role: 'assistant', content: `${STAFF_PREFIX}${turn.content}` };
  return { role: turn.role, content: turn.content };
}

/**
 * Turns for APIs that require strictly alternating roles starting with `user` (Anthropic):
 * consecutive turns of the same role are merged (joined by a blank line), empty turns dropped and
 * leading assistant turns removed.
 */
export function alternatingTurns(history: ChatTurn[]): ProviderTurn[] {
  const merged: ProviderTurn[] = [];
  for (const turn of history.map(toProviderTurn)) {
    if (turn.content.trim() === '') continue;
    const last = merged[merged.length - 1];
    if (last && last.role === turn.role) last.content = `${last.content}\n\n${turn.content}`;
    else if (last || turn.role === 'user') merged.push({ ...turn });
  }
  return merged;
}

/** The newest user text of a request (Dify's `query`). */
export function lastUserText(request: ReplyRequest): string {
  for (let index = request.history.length - 1; index >= 0; index--) {
    const turn = request.history[index];
    if (turn.role === 'user' && !turn.staff) return turn.content;
  }
  return '';
}

/** Usage estimate: characters / 4, rounded up. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}
