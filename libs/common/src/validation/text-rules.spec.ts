import { ArgumentMetadata } from '@nestjs/common';
import { ErrorCode } from '../errors';
import { ClientIdPipe, StorableInputPipe } from './pipes';
import { findUnstorableText, isClientId, isStorableText } from './text-rules';

describe('text the database can store', () => {
  it.each([
    ['plain text', 'hello', true],
    ['line breaks, tabs and other control characters', 'a\nb\tc\u0001', true],
    ['a surrogate pair (an emoji)', 'ok \u{1F600}', true],
    ['U+0000', 'a\u0000b', false],
    ['a lone high surrogate', 'a\ud800', false],
    ['a lone low surrogate', '\udc00b', false],
    ['a reversed pair', '\ude00\ud83d', false],
  ])('%s → %s', (_label, text, storable) => {
    expect(isStorableText(text)).toBe(storable);
  });

  it('finds the first unstorable string or key at any depth, with its path', () => {
    expect(findUnstorableText({ a: 'x', b: ['y', 'z\u0000'] }, 'q')).toBe('q.b.1');
    expect(findUnstorableText({ ['k\u0000']: 'x' }, '')).toBe('"k\\u0000"');
    expect(findUnstorableText({ a: { b: 1, c: null } }, '')).toBeUndefined();
  });

  it.each([
    ['32 hex characters', 'a0'.repeat(16), true],
    ['a UUID', '0b6f3c7e-8d4a-4c47-9a43-2b1f7a5e9c10', true],
    ['base64url', 'Ab_-9z', true],
    ['an earlier client id', 'sess.1:2', true],
    ['empty', '', false],
    ['a space', 'a b', false],
    ['a slash', 'a/b', false],
    ['U+0000', 'a\u0000', false],
    ['non-ASCII letters', 'séance', false],
  ])('client id: %s → %s', (_label, id, valid) => {
    expect(isClientId(id)).toBe(valid);
  });
});

describe('REST pipes', () => {
  const param = (data: string): ArgumentMetadata => ({ type: 'param', data });

  it('ClientIdPipe passes ids and refuses anything else with BAD_REQUEST naming the parameter', () => {
    expect(new ClientIdPipe().transform('abc-1', param('id'))).toBe('abc-1');
    expect(() => new ClientIdPipe().transform('a b', param('token'))).toThrow(
      expect.objectContaining({
        code: ErrorCode.BAD_REQUEST,
        message: expect.stringContaining('token must be'),
      }),
    );
  });

  it('StorableInputPipe checks route parameters and queries, nothing else', () => {
    const pipe = new StorableInputPipe();
    expect(() => pipe.transform('u\u0000', param('userId'))).toThrow(
      expect.objectContaining({ code: ErrorCode.BAD_REQUEST, message: expect.stringContaining('userId') }),
    );
    expect(() => pipe.transform({ user_id: ['a', 'b\u0000'] }, { type: 'query' })).toThrow(
      expect.objectContaining({ message: expect.stringContaining('user_id.1') }),
    );
    const body = { name: 'x\u0000' };
    expect(pipe.transform(body, { type: 'body' })).toBe(body);
    expect(pipe.transform({ user_id: 'ok' }, { type: 'query' })).toEqual({ user_id: 'ok' });
  });
});
