import { createHmac, timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AppConfig, InjectConfig } from '@chatbox/common';
import { FILE_URL_KEY_LABEL } from './files.constants';

const MS_PER_SECOND = 1000;

/**
 * Signed file links: `{prefix}/files/<id>?expires=<unix s>&signature=<HMAC-SHA256(id.expires)>`.
 * The key is derived from JWT_SECRET, so rotating the JWT secret also revokes every link.
 * Stored messages keep the canonical unsigned path; links are signed afresh on every read.
 */
@Injectable()
export class FileUrlSigner {
  private readonly key: Buffer;

  constructor(@InjectConfig() private readonly config: AppConfig) {
    this.key = createHmac('sha256', config.jwt.secret).update(FILE_URL_KEY_LABEL).digest();
  }

  /** The unsigned path stored in messages (`fileUrl`). */
  canonicalPath(fileId: string): string {
    return `${this.config.pathPrefix}/files/${encodeURIComponent(fileId)}`;
  }

  sign(fileId: string, now = Date.now()): string {
    const expires = this.expiry(now);
    const signature = this.signatureOf(fileId, expires);
    return `${this.canonicalPath(fileId)}?expires=${expires}&signature=${signature}`;
  }

  /**
   * A link for the viewers of a shared session: the signature covers the share token, and the
   * download also checks that the token is still the session's current one, so revoking (or
   * replacing) the share link ends these links at once rather than at their expiry.
   */
  signShared(fileId: string, shareToken: string, now = Date.now()): string {
    const expires = this.expiry(now);
    const signature = this.signatureOf(fileId, expires, shareToken);
    const token = encodeURIComponent(shareToken);
    return `${this.canonicalPath(fileId)}?expires=${expires}&share_token=${token}&signature=${signature}`;
  }

  /**
   * Constant-time check of a presented signature; false when forged, malformed or expired. A link
   * made by `signShared` verifies only with its `shareToken`.
   */
  verify(
    fileId: string,
    expires: unknown,
    signature: unknown,
    now = Date.now(),
    shareToken?: string,
  ): boolean {
    if (typeof expires !== 'string' || typeof signature !== 'string' || !/^\d{1,12}$/.test(expires))
      return false;
    const expected = Buffer.from(this.signatureOf(fileId, Number(expires), shareToken));
    const presented = Buffer.from(signature);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return false;
    return Number(expires) * MS_PER_SECOND > now;
  }

  private expiry(now: number): number {
    return Math.floor((now + this.config.storage.fileUrlTtlMs) / MS_PER_SECOND);
  }

  private signatureOf(fileId: string, expires: number, shareToken?: string): string {
    const scope = shareToken === undefined ? '' : `.share:${shareToken}`;
    return createHmac('sha256', this.key).update(`${fileId}.${expires}${scope}`).digest('base64url');
  }
}
