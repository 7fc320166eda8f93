import { Observable } from 'rxjs';
import type { LlmProvider, ReplyEvent, ReplyRequest } from '../llm.types';

/** Pause between demo words: slow enough to see streaming, fast enough for tests. */
export const DEMO_WORD_INTERVAL_MS = 40;
const CHARS_PER_TOKEN = 4;

/** The deterministic answer for a question: the same input always streams the same words. */
export function demoAnswer(question: string): string {
  const excerpt = question.replace(/\s+/g, ' ').trim().slice(0, 80);
  return (
    `This is the demo model: no language model is configured, so I answer with a fixed text. ` +
    `You wrote "${excerpt}". Configure LLM_PROVIDER_1_* to talk to a real model.`
  );
}

/** Built-in provider with no network (SPEC 11): streams a deterministic answer word by word. */
export class DemoProvider implements LlmProvider {
  readonly type = 'demo';

  constructor(
    readonly id: string,
    private readonly wordIntervalMs = DEMO_WORD_INTERVAL_MS,
  ) {}

  stream(request: ReplyRequest): Observable<ReplyEvent> {
    const question = [...request.history].reverse().find((turn) => turn.role === 'user')?.content ?? '';
    const answer = demoAnswer(question);
    const words = answer.split(/(?<= )/);
    return new Observable<ReplyEvent>((subscriber) => {
      let index = 0;
      const timer = setInterval(() => {
        if (index < words.length) {
          subscriber.next({ kind: 'delta', text: words[index++] });
          return;
        }
        clearInterval(timer);
        const promptChars = request.history.reduce((sum, turn) => sum + turn.content.length, 0);
        subscriber.next({
          kind: 'usage',
          promptTokens: Math.ceil(promptChars / CHARS_PER_TOKEN),
          completionTokens: Math.ceil(answer.length / CHARS_PER_TOKEN),
          estimated: true,
        });
        subscriber.next({ kind: 'end' });
        subscriber.complete();
      }, this.wordIntervalMs);
      return () => clearInterval(timer);
    });
  }
}
