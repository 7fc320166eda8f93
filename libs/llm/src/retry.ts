import { LlmProviderError } from './llm-errors';

/** Attempts per reply (first try included) before the first token. */
export const LLM_RETRY_ATTEMPTS = 3;
/** First backoff delay; doubles per attempt. */
export const LLM_RETRY_BASE_DELAY_MS = 250;
/** Upper bound of one computed backoff delay (a longer `Retry-After` is honoured separately). */
export const LLM_RETRY_MAX_DELAY_MS = 4_000;
/** Share of the delay that is randomised (0.5 = the delay lies between 50 % and 100 %). */
export const LLM_RETRY_JITTER = 0.5;

/** HTTP statuses worth another attempt: request timeout, rate limit and any server error. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Whether a failure may be retried (before the first token only; the caller checks that):
 * connection errors, streams cut before any text, 408, 429 and 5xx.
 */
export function isRetryable(error: LlmProviderError): boolean {
  switch (error.kind) {
    case 'connection':
    case 'truncated':
      return true;
    case 'http':
    case 'provider':
      return error.status !== undefined && isRetryableStatus(error.status);
  }
}

/**
 * Parses a `Retry-After` header: delay-seconds (`"3"`, `"1.5"`) or an HTTP date. Returns the delay
 * in milliseconds (never negative) or undefined when absent or unreadable. `retry-after-ms` (sent
 * by OpenAI-style servers) wins when present.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now = Date.now(),
  retryAfterMs?: string | null,
): number | undefined {
  if (retryAfterMs !== undefined && retryAfterMs !== null && /^\s*\d+(\.\d+)?\s*$/.test(retryAfterMs))
    return Math.max(0, Math.round(Number(retryAfterMs)));
  if (value === undefined || value === null) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  if (!/[a-z]/i.test(text)) return undefined; // an HTTP date names its day and month
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * Exponential backoff with jitter for retry number `retry` (1 = first retry):
 * base × 2^(retry-1), capped, then randomised down by up to `LLM_RETRY_JITTER`.
 */
export function backoffDelay(
  retry: number,
  random: () => number = Math.random,
  baseMs = LLM_RETRY_BASE_DELAY_MS,
  capMs = LLM_RETRY_MAX_DELAY_MS,
): number {
  const exponential = Math.min(capMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(exponential * (1 - LLM_RETRY_JITTER * random()));
}

/** The delay before retry number `retry`: the server's `Retry-After` when it gave one, else backoff. */
export function retryDelay(
  error: LlmProviderError,
  retry: number,
  random: () => number = Math.random,
): number {
  return error.retryAfterMs ?? backoffDelay(retry, random);
}
