import { LlmProviderError } from './llm-errors';
import {
  backoffDelay,
  isRetryable,
  isRetryableStatus,
  LLM_RETRY_BASE_DELAY_MS,
  LLM_RETRY_MAX_DELAY_MS,
  parseRetryAfter,
  retryDelay,
} from './retry';

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');

  it('reads delay-seconds, including fractions', () => {
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter(' 1.5 ', now)).toBe(1_500);
    expect(parseRetryAfter('0', now)).toBe(0);
  });

  it('reads an HTTP date relative to now, never negative', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now)).toBe(0);
  });

  it('prefers retry-after-ms when given', () => {
    expect(parseRetryAfter('10', now, '250')).toBe(250);
    expect(parseRetryAfter('10', now, 'soon')).toBe(10_000);
  });

  it('returns undefined for absent or unreadable values', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('later', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
  });
});

describe('backoffDelay', () => {
  it('doubles per retry from the base delay, with no jitter at random() = 0', () => {
    expect(backoffDelay(1, () => 0)).toBe(LLM_RETRY_BASE_DELAY_MS);
    expect(backoffDelay(2, () => 0)).toBe(LLM_RETRY_BASE_DELAY_MS * 2);
    expect(backoffDelay(3, () => 0)).toBe(LLM_RETRY_BASE_DELAY_MS * 4);
  });

  it('is capped', () => {
    expect(backoffDelay(30, () => 0)).toBe(LLM_RETRY_MAX_DELAY_MS);
  });

  it('jitters down to half the delay at most', () => {
    expect(backoffDelay(2, () => 0.999)).toBeGreaterThanOrEqual(LLM_RETRY_BASE_DELAY_MS);
    expect(backoffDelay(2, () => 0.999)).toBeLessThan(LLM_RETRY_BASE_DELAY_MS * 2);
    for (let i = 0; i < 50; i++) {
      const delay = backoffDelay(3);
      expect(delay).toBeGreaterThanOrEqual(LLM_RETRY_BASE_DELAY_MS * 2);
      expect(delay).toBeLessThanOrEqual(LLM_RETRY_BASE_DELAY_MS * 4);
    }
  });
});

describe('retryDelay', () => {
  it('honours Retry-After over the backoff', () => {
    const error = new LlmProviderError('http', 'HTTP 429', { status: 429, retryAfterMs: 7_000 });
    expect(retryDelay(error, 1, () => 0)).toBe(7_000);
    expect(retryDelay(new LlmProviderError('http', 'HTTP 503', { status: 503 }), 1, () => 0)).toBe(
      LLM_RETRY_BASE_DELAY_MS,
    );
  });
});

describe('isRetryable', () => {
  it('retries connection errors, truncation, 408, 429 and 5xx only', () => {
    expect(isRetryableStatus(408)).toBe(true);
    expect(isRetryableStatus(429)).toBe(true);
    expect(isRetryableStatus(500)).toBe(true);
    expect(isRetryableStatus(529)).toBe(true);
    for (const status of [400, 401, 403, 404, 422]) expect(isRetryableStatus(status)).toBe(false);
    expect(isRetryable(new LlmProviderError('connection', 'refused'))).toBe(true);
    expect(isRetryable(new LlmProviderError('truncated', 'cut'))).toBe(true);
    expect(isRetryable(new LlmProviderError('http', 'x', { status: 401 }))).toBe(false);
    expect(isRetryable(new LlmProviderError('provider', 'x'))).toBe(false);
    expect(isRetryable(new LlmProviderError('provider', 'overloaded', { status: 529 }))).toBe(true);
  });
});
