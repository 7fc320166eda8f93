/** Value parsers shared by the environment schema and the typed config builder. */

const DURATION_PATTERN = /^(\d+)(ms|s|m|h)$/;
const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `150ms`, `30s`, `15m`, `2h` into milliseconds; `undefined` when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION_PATTERN.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * DURATION_UNIT_MS[match[2]];
}

const SIZE_PATTERN = /^(\d+)\s*(b|kb|mb|gb)?$/i;
const SIZE_UNIT_BYTES: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** Parses `1048576`, `512KB`, `25MB`, `1GB` (binary multiples) into bytes. */
export function parseByteSize(text: string): number | undefined {
  const match = SIZE_PATTERN.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * SIZE_UNIT_BYTES[(match[2] ?? 'b').toLowerCase()];
}

/** Comma list: trimmed, empties dropped. */
export function parseList(text: string | undefined): string[] {
  if (!text) return [];
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

export function parseBoolean(text: string | undefined, fallback: boolean): boolean {
  if (text === undefined || text.trim() === '') return fallback;
  return ['1', 'true', 'yes', 'on'].includes(text.trim().toLowerCase());
}
