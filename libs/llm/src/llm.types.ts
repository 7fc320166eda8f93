import type { Observable } from 'rxjs';

/** One turn of context sent to a model. Admin messages are assistant turns marked as staff. */
export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
  staff?: boolean;
}

export interface ReplyRequest {
  modelId: string;
  userId: string;
  sessionId: string;
  /**
   * Prior turns, oldest first, the new user message last. Sent as given: limiting it to
   * `LLM_HISTORY_MESSAGES` (`config.llm.historyMessages`) is the caller's job (the session).
   */
  history: ChatTurn[];
  /** Dify keeps its own context per conversation. */
  conversationId?: string;
}

export type LlmErrorCode = 'LLM_UNAVAILABLE' | 'LLM_TIMEOUT' | 'LLM_ERROR';

/**
 * What a reply stream emits. A stream always finishes with exactly one `end` or one `error`
 * event and then completes; it never errors at the Observable level.
 */
export type ReplyEvent =
  | { kind: 'delta'; text: string }
  | { kind: 'file'; url: string; mimeType?: string; name?: string }
  | { kind: 'usage'; promptTokens: number; completionTokens: number; estimated?: boolean }
  | { kind: 'end'; conversationId?: string }
  | { kind: 'error'; code: LlmErrorCode; message: string };

export interface ModelInfo {
  id: string;
  name: string;
}

/**
 * A configured provider: turns a request into a stream; unsubscribing cancels the upstream request.
 * Unlike `LlmService.stream`, a provider stream may fail at the Observable level (with an
 * `LlmProviderError`, so the service can decide on retries) and may complete without `end` (which
 * the service treats as truncation). `LlmService` wraps it into the public reply contract.
 */
export interface LlmProvider {
  readonly id: string;
  readonly type: string;
  stream(request: ReplyRequest, systemPrompt: string): Observable<ReplyEvent>;
}
