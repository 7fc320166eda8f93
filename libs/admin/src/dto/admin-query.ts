import { DomainError, ErrorCode } from '@chatbox/common';
import {
  HELP_STATES,
  HelpState,
  SESSION_SORT_FIELDS,
  SessionListFilter,
  SessionSortField,
} from '@chatbox/storage';

export const SORT_FIELDS = SESSION_SORT_FIELDS;
const LIST_PARAMS = [
  'user_id',
  'status',
  'admin_assisted',
  'help_requested',
  'help_state',
  'user_id_contains',
  'start_time',
  'end_time',
  'start_time_from',
  'start_time_to',
  'sort_by',
  'sort_order',
  'limit',
  'offset',
];
const DEFAULT_LIMIT = 100;
/** The dashboard's user search: longer text cannot match an id a person would type. */
export const USER_SEARCH_MAX_CHARS = 128;
const MAX_LIMIT = 1000;
const DAY_MS = 86_400_000;
const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/i;

export type Query = Record<string, unknown>;

function bad(message: string): DomainError {
  return new DomainError(ErrorCode.BAD_REQUEST, message);
}

/** Each parameter must be one plain string: arrays and `[$op]` objects are refused, never used as operators. */
function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw bad(`${name} must be a single value`);
  return value;
}

export function rejectUnknown(query: Query, allowed: string[]): void {
  for (const key of Object.keys(query))
    if (!allowed.includes(key)) throw bad(`unknown query parameter ${key.slice(0, 64)}`);
}

/** Whether year-month-day names a real day (Date would roll 2026-02-31 over into March). */
function isCalendarDate(year: string, month: string, day: string): boolean {
  const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  return (
    date.getUTCFullYear() === Number(year) &&
    date.getUTCMonth() === Number(month) - 1 &&
    date.getUTCDate() === Number(day)
  );
}

/** RFC 3339 or `YYYY-MM-DD` naming a real calendar day; a date-only upper bound means the end of that day. */
export function parseTime(name: string, value: string | undefined, endOfDay = false): Date | undefined {
  if (value === undefined || value === '') return undefined;
  const dateOnly = DATE_ONLY.exec(value);
  const full = dateOnly ? undefined : RFC3339.exec(value);
  const [, year, month, day] = dateOnly ?? full ?? [];
  if (year === undefined || !isCalendarDate(year, month, day))
    throw bad(`${name} must be RFC 3339 or YYYY-MM-DD`);
  if (dateOnly) {
    const start = new Date(`${value}T00:00:00.000Z`);
    return endOfDay ? new Date(start.getTime() + DAY_MS - 1) : start;
  }
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) throw bad(`${name} must be RFC 3339 or YYYY-MM-DD`);
  return parsed;
}

function parseBool(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw bad(`${name} must be true or false`);
}

function parseWhole(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max)
    throw bad(`${name} must be a whole number from ${min} to ${max}`);
  return Number(value);
}

export interface ListQuery {
  filter: SessionListFilter;
  sortBy: SessionSortField;
  sortOrder: 'asc' | 'desc';
  limit: number;
  offset: number;
}

export function parseListQuery(query: Query, fixedUserId?: string): ListQuery {
  rejectUnknown(query, LIST_PARAMS);
  const status = single(query, 'status');
  if (status !== undefined && status !== 'active' && status !== 'ended')
    throw bad('status must be active or ended');
  const sortBy = (single(query, 'sort_by') ?? 'start_time') as SessionSortField;
  if (!SORT_FIELDS.includes(sortBy)) throw bad(`sort_by must be one of ${SORT_FIELDS.join(', ')}`);
  const sortOrder = single(query, 'sort_order') ?? 'desc';
  if (sortOrder !== 'asc' && sortOrder !== 'desc') throw bad('sort_order must be asc or desc');
  const userId = fixedUserId ?? single(query, 'user_id');
  const helpState = single(query, 'help_state');
  if (helpState !== undefined && !HELP_STATES.includes(helpState as HelpState))
    throw bad(`help_state must be one of ${HELP_STATES.join(', ')}`);
  const userIdContains = single(query, 'user_id_contains')?.trim();
  if (userIdContains !== undefined && userIdContains.length > USER_SEARCH_MAX_CHARS)
    throw bad(`user_id_contains must be at most ${USER_SEARCH_MAX_CHARS} characters`);
  const startFrom = parseTime('start_time', single(query, 'start_time_from') ?? single(query, 'start_time'));
  const startTo = parseTime('end_time', single(query, 'start_time_to') ?? single(query, 'end_time'), true);
  if (startFrom && startTo && startTo < startFrom) throw bad('end_time must not be before start_time');
  return {
    filter: {
      ...(userId !== undefined && userId !== '' ? { userId } : {}),
      ...(status ? { status } : {}),
      ...(parseBool('admin_assisted', single(query, 'admin_assisted')) !== undefined
        ? { adminAssisted: parseBool('admin_assisted', single(query, 'admin_assisted')) }
        : {}),
      ...(parseBool('help_requested', single(query, 'help_requested')) !== undefined
        ? { helpRequested: parseBool('help_requested', single(query, 'help_requested')) }
        : {}),
      ...(helpState ? { helpState: helpState as HelpState } : {}),
      ...(userIdContains ? { userIdContains } : {}),
      ...(startFrom ? { startFrom } : {}),
      ...(startTo ? { startTo } : {}),
    },
    sortBy,
    sortOrder,
    limit: parseWhole('limit', single(query, 'limit'), 1, MAX_LIMIT, DEFAULT_LIMIT),
    offset: parseWhole('offset', single(query, 'offset'), 0, Number.MAX_SAFE_INTEGER, 0),
  };
}

export interface RangeQuery {
  start: Date;
  end: Date;
  bucketMs?: number;
}

export const BUCKETS: Record<string, number> = {
  '5m': 300_000,
  '15m': 900_000,
  '1h': 3_600_000,
  '1d': DAY_MS,
};
const MAX_BUCKETS = 500;

export function parseRangeQuery(query: Query, withBucket = false, now = new Date()): RangeQuery {
  rejectUnknown(query, withBucket ? ['start_time', 'end_time', 'bucket'] : ['start_time', 'end_time']);
  const end = parseTime('end_time', single(query, 'end_time'), true) ?? now;
  const start = parseTime('start_time', single(query, 'start_time')) ?? new Date(end.getTime() - DAY_MS);
  if (end < start) throw bad('end_time must not be before start_time');
  if (!withBucket) return { start, end };
  const bucket = single(query, 'bucket');
  let bucketMs: number;
  if (bucket === undefined) {
    const span = Math.max(1, end.getTime() - start.getTime());
    bucketMs = Object.values(BUCKETS).find((size) => span / size <= MAX_BUCKETS / 5) ?? DAY_MS;
  } else {
    if (!Object.hasOwn(BUCKETS, bucket))
      throw bad(`bucket must be one of ${Object.keys(BUCKETS).join(', ')}`);
    bucketMs = BUCKETS[bucket];
  }
  if ((end.getTime() - start.getTime()) / bucketMs > MAX_BUCKETS)
    throw bad('range too long for this bucket size');
  return { start, end, bucketMs };
}
