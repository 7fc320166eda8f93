/**
 * Internal failure of one provider request. Providers raise it at the Observable level; only
 * `LlmService` sees it and turns it into the client-safe `error` event of the reply contract.
 * `detail` is for the operator log only: it may hold the provider's message, never the key.
 */
export type ProviderFailureKind =
  /** The provider answered with an HTTP error status. */
  | 'http'
  /** No answer: refused, reset, DNS, TLS, socket closed before headers. */
  | 'connection'
  /** The stream stopped before its end marker (`[DONE]`, `message_stop`, `message_end`). */
  | 'truncated'
  /** The provider reported an error inside the stream (`error` event), or sent unreadable data. */
  | 'provider';

export class LlmProviderError extends Error {
  constructor(
    readonly kind: ProviderFailureKind,
    readonly detail: string,
    readonly options: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(detail, { cause: options.cause });
    this.name = 'LlmProviderError';
  }

  get status(): number | undefined {
    return this.options.status;
  }

  get retryAfterMs(): number | undefined {
    return this.options.retryAfterMs;
  }
}

export function isLlmProviderError(error: unknown): error is LlmProviderError {
  return error instanceof LlmProviderError;
}

/**
 * Speech-to-text or text-to-speech is not configured or failed. The session maps it to
 * `TRANSCRIPTION_UNAVAILABLE`; `message` is safe to show, details go to the log.
 */
export class VoiceUnavailableError extends Error {
  readonly code = 'TRANSCRIPTION_UNAVAILABLE' as const;

  constructor(
    readonly operation: 'transcribe' | 'synthesize',
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'VoiceUnavailableError';
  }
}

export function isVoiceUnavailableError(error: unknown): error is VoiceUnavailableError {
  return error instanceof VoiceUnavailableError;
}
