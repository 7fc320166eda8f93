import { loadConfig } from '@chatbox/common';
import { FileUrlSigner } from './file-url-signer';

const config = loadConfig({
  NODE_ENV: 'test',
  JWT_SECRET: 'signer-spec-key-0123456789abcdef',
  FILE_URL_TTL: '2s',
});
const FILE_ID = 'a'.repeat(32);

function parts(url: string): { path: string; expires: string; signature: string } {
  const parsed = new URL(url, 'http://x');
  return {
    path: parsed.pathname,
    expires: parsed.searchParams.get('expires') ?? '',
    signature: parsed.searchParams.get('signature') ?? '',
  };
}

describe('FileUrlSigner', () => {
  const signer = new FileUrlSigner(config);

  it('signs the canonical path and verifies until expiry', () => {
    const now = Date.now();
    const { path, expires, signature } = parts(signer.sign(FILE_ID, now));
    expect(path).toBe(`/chatbox/files/${FILE_ID}`);
    expect(signer.canonicalPath(FILE_ID)).toBe(path);
    expect(signer.verify(FILE_ID, expires, signature, now)).toBe(true);
    expect(signer.verify(FILE_ID, expires, signature, now + 2_000)).toBe(false);
  });

  it('refuses forged, moved or malformed signatures', () => {
    const { expires, signature } = parts(signer.sign(FILE_ID));
    expect(signer.verify('b'.repeat(32), expires, signature)).toBe(false);
    expect(signer.verify(FILE_ID, String(Number(expires) + 60), signature)).toBe(false);
    expect(
      signer.verify(FILE_ID, expires, `${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`),
    ).toBe(false);
    expect(signer.verify(FILE_ID, expires, undefined)).toBe(false);
    expect(signer.verify(FILE_ID, ['1'], signature)).toBe(false);
  });

  it('scopes a shared view link to its share token', () => {
    const url = new URL(signer.signShared(FILE_ID, 'share-token-1'), 'http://x');
    const expires = url.searchParams.get('expires') ?? '';
    const signature = url.searchParams.get('signature') ?? '';
    expect(url.searchParams.get('share_token')).toBe('share-token-1');
    expect(signer.verify(FILE_ID, expires, signature, Date.now(), 'share-token-1')).toBe(true);
    expect(signer.verify(FILE_ID, expires, signature, Date.now(), 'share-token-2')).toBe(false);
    expect(signer.verify(FILE_ID, expires, signature)).toBe(false);
    const plain = parts(signer.sign(FILE_ID));
    expect(signer.verify(FILE_ID, plain.expires, plain.signature, Date.now(), 'share-token-1')).toBe(false);
  });

  it('uses a key derived from JWT_SECRET', () => {
    const other = new FileUrlSigner(
      loadConfig({ NODE_ENV: 'test', JWT_SECRET: 'another-spec-key-0123456789abcdef' }),
    );
    const { expires, signature } = parts(other.sign(FILE_ID));
    expect(signer.verify(FILE_ID, expires, signature)).toBe(false);
  });
});
