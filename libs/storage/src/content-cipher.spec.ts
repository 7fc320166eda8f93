import { ContentCipher } from './content-cipher';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const OLD = Buffer.from('fedcba9876543210fedcba9876543210');

describe('ContentCipher', () => {
  it('round-trips text including multi-byte characters', () => {
    const cipher = new ContentCipher(KEY);
    const sealed = cipher.encrypt('héllo 👋 world');
    expect(sealed).not.toContain('world');
    expect(cipher.decrypt(sealed)).toBe('héllo 👋 world');
  });

  it('uses a fresh nonce each time', () => {
    const cipher = new ContentCipher(KEY);
    expect(cipher.encrypt('same')).not.toBe(cipher.encrypt('same'));
  });

  it('returns legacy plaintext as stored, including base64-looking words', () => {
    const cipher = new ContentCipher(KEY);
    expect(cipher.decrypt('hello')).toBe('hello');
    expect(cipher.decrypt('SGVsbG8gd29ybGQgdGhpcyBpcyBwbGFpbiBiYXNlNjQ=')).toBe(
      'SGVsbG8gd29ybGQgdGhpcyBpcyBwbGFpbiBiYXNlNjQ=',
    );
  });

  it('decrypts with an old key after rotation, and not without it', () => {
    const sealedWithOld = new ContentCipher(OLD).encrypt('rotated');
    expect(new ContentCipher(KEY, [OLD]).decrypt(sealedWithOld)).toBe('rotated');
    expect(new ContentCipher(KEY).decrypt(sealedWithOld)).toBe(sealedWithOld);
  });

  it('stores plaintext when no key is configured', () => {
    const cipher = new ContentCipher(undefined);
    expect(cipher.enabled).toBe(false);
    expect(cipher.encrypt('plain')).toBe('plain');
  });

  it('rejects a tampered value (returns it as stored, never garbage)', () => {
    const cipher = new ContentCipher(KEY);
    const sealed = Buffer.from(cipher.encrypt('integrity'), 'base64');
    sealed[14] ^= 0xff;
    const tampered = sealed.toString('base64');
    expect(cipher.decrypt(tampered)).toBe(tampered);
  });
});
