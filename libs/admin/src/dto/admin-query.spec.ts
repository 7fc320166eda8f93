import { DomainError } from '@chatbox/common';
import { parseRangeQuery, parseTime } from './admin-query';

describe('admin query parsing', () => {
  it.each(['2026-02-31', '2026-02-29', '2026-04-31', '2026-13-01', '2026-00-10', '2026-02-30T10:00:00Z'])(
    'refuses %s, a day that does not exist',
    (value) => {
      expect(() => parseTime('start_time', value)).toThrow(DomainError);
    },
  );

  it.each(['2026-02-28T24:00:00Z', '2026-02-28T23:60:00Z', '2026-02-28T10:00:00+25:00'])(
    'refuses %s, a time that does not exist',
    (value) => {
      expect(() => parseTime('start_time', value)).toThrow(/start_time must be RFC 3339 or YYYY-MM-DD/);
    },
  );

  it('accepts real days, leap days and offsets', () => {
    expect(parseTime('start_time', '2024-02-29')).toEqual(new Date('2024-02-29T00:00:00.000Z'));
    expect(parseTime('end_time', '2024-02-29', true)).toEqual(new Date('2024-02-29T23:59:59.999Z'));
    expect(parseTime('start_time', '2026-03-10T12:30:00+02:00')).toEqual(
      new Date('2026-03-10T10:30:00.000Z'),
    );
  });

  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty', '1w'])(
    'refuses bucket=%s with a 400 naming the choices (own keys only)',
    (bucket) => {
      expect(() =>
        parseRangeQuery({ start_time: '2026-03-10', end_time: '2026-03-11', bucket }, true),
      ).toThrow('bucket must be one of 5m, 15m, 1h, 1d');
    },
  );

  it('takes a listed bucket', () => {
    expect(
      parseRangeQuery({ start_time: '2026-03-10', end_time: '2026-03-11', bucket: '1h' }, true),
    ).toMatchObject({
      bucketMs: 3_600_000,
    });
  });
});
