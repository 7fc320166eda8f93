import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const ALGORITHM = 'aes-256-gcm';

/**
 * AES-256-GCM for message text at rest (SPEC 8): standard base64 of nonce(12) ‖ ciphertext ‖ tag(16),
 * random nonce, no AAD. Old keys decrypt only; a value no key opens is returned as stored (legacy plaintext).
 */
export class ContentCipher {
  constructor(
    private readonly key: Buffer | undefined,
    private readonly oldKeys: Buffer[] = [],
  ) {}

  get enabled(): boolean {
    return this.key !== undefined;
  }

  encrypt(plaintext: string): string {
    if (!this.key) return plaintext;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.key, nonce);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([nonce, ciphertext, cipher.getAuthTag()]).toString('base64');
  }

  decrypt(stored: string): string {
    const keys = this.key ? [this.key, ...this.oldKeys] : this.oldKeys;
    if (keys.length === 0 || !looksLikeSealedBox(stored)) return stored;
    const box = Buffer.from(stored, 'base64');
    for (const key of keys) {
      const opened = open(box, key);
      if (opened !== undefined) return opened;
    }
    return stored;
  }
}

function looksLikeSealedBox(value: string): boolean {
  return (
    value.length >= Math.ceil(((NONCE_BYTES + TAG_BYTES) * 4) / 3) && /^[A-Za-z0-9+/]+={0,2}$/.test(value)
  );
}

function open(box: Buffer, key: Buffer): string | undefined {
  try {
    const decipher = createDecipheriv(ALGORITHM, key, box.subarray(0, NONCE_BYTES));
    decipher.setAuthTag(box.subarray(box.length - TAG_BYTES));
    return Buffer.concat([
      decipher.update(box.subarray(NONCE_BYTES, box.length - TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    return undefined;
  }
}
