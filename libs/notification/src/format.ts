/** Long enough to judge urgency, short enough for an SMS-sized glance and a dashboard row. */
export const EXCERPT_MAX_CHARS = 200;
const ELLIPSIS = '…';

const MS_PER_SECOND = 1_000;
const SECONDS_PER_MINUTE = 60;
const MINUTES_PER_HOUR = 60;
const PERCENT = 100;

/** RFC 3339 in UTC, whole seconds: `2025-01-31T08:15:00Z`. */
export function formatTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `45s`, `5m`, `2m 5s`, `1h 3m`: for humans reading an alert, not for parsing. */
export function formatDuration(ms: number): string {
  const totalSeconds = Math.max(0, Math.round(ms / MS_PER_SECOND));
  const hours = Math.floor(totalSeconds / (SECONDS_PER_MINUTE * MINUTES_PER_HOUR));
  const minutes = Math.floor(totalSeconds / SECONDS_PER_MINUTE) % MINUTES_PER_HOUR;
  const seconds = totalSeconds % SECONDS_PER_MINUTE;
  const parts = [hours && `${hours}h`, minutes && `${minutes}m`, seconds && `${seconds}s`].filter(Boolean);
  return parts.length > 0 ? parts.join(' ') : '0s';
}

export function formatPercent(ratio: number): string {
  return `${Math.round(ratio * PERCENT)}%`;
}

/**
 * Whitespace collapsed (an excerpt is one line in every channel) and cut by code points, so a
 * surrogate pair is never split.
 */
export function excerpt(text: string | undefined, maxChars = EXCERPT_MAX_CHARS): string {
  const oneLine = (text ?? '').replace(/\s+/g, ' ').trim();
  const codePoints = Array.from(oneLine);
  if (codePoints.length <= maxChars) return oneLine;
  return (
    codePoints
      .slice(0, maxChars - ELLIPSIS.length)
      .join('')
      .trimEnd() + ELLIPSIS
  );
}

const HTML_ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => HTML_ENTITIES[char]);
}

/** Control characters (CR/LF above all) never belong in a header or an SMS line. */
export function singleLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ');
}

/**
 * `<base>?session_id=<id>` (SPEC 7). With no base at all the link stays relative (`?session_id=…`):
 * still useful pasted after the admin panel address, and better than guessing a host.
 */
export function sessionLink(base: string | undefined, sessionId: string): string {
  const query = new URLSearchParams({ session_id: sessionId }).toString();
  if (!base) return `?${query}`;
  const separator = base.includes('?') ? '&' : '?';
  return `${base}${separator}${query}`;
}
