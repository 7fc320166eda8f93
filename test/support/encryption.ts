import { createDecipheriv } from 'node:crypto';

/** Decrypts with nothing but Node's crypto and the documented layout: nonce(12) ‖ ciphertext ‖ tag(16). */
export function decryptDocumented(stored: string, key: string): string {
  const box = Buffer.from(stored, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', Buffer.from(key, 'utf8'), box.subarray(0, 12));
  decipher.setAuthTag(box.subarray(box.length - 16));
  return Buffer.concat([decipher.update(box.subarray(12, box.length - 16)), decipher.final()]).toString(
    'utf8',
  );
}
