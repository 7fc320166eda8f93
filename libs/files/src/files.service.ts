import type { Readable } from 'node:stream';
import { Injectable } from '@nestjs/common';
import { DomainError, ErrorCode, Principal } from '@chatbox/common';
import { SessionRepository } from '@chatbox/storage';
import type { ByteRange } from './byte-range';
import { FileStorageDriver } from './drivers/file-storage-driver';
import { FILE_ID_PATTERN } from './files.constants';
import { FileUrlSigner } from './file-url-signer';
import { UploadRecord, UploadsRepository } from './uploads.repository';

/** How a `GET /files/:id` caller proved access. */
export interface FileAccess {
  signature?: { expires?: unknown; signature?: unknown };
  principal?: Principal;
  shareToken?: unknown;
}

/** Lookups and access rules for stored files; used by the REST controller and the chat session. */
@Injectable()
export class FilesService {
  constructor(
    private readonly uploads: UploadsRepository,
    private readonly driver: FileStorageDriver,
    private readonly sessions: SessionRepository,
    private readonly signer: FileUrlSigner,
  ) {}

  /** A file the user uploaded; unknown, malformed and foreign ids all answer undefined. */
  async findOwned(fileId: string, userId: string): Promise<UploadRecord | undefined> {
    if (!FILE_ID_PATTERN.test(fileId)) return undefined;
    return this.uploads.findOwned(fileId, userId);
  }

  /**
   * The upload if the caller may read it: a valid signed URL, or a Bearer token of the owner or any
   * admin (which covers the admin assisting a session), or a share link of a session whose messages
   * reference the file.
   * @throws DomainError FORBIDDEN for a forged or expired signature, UNAUTHORIZED with no credentials,
   *   NOT_FOUND for unknown ids and for callers that may not know the file exists.
   */
  async authorize(fileId: string, access: FileAccess): Promise<UploadRecord> {
    const upload = FILE_ID_PATTERN.test(fileId) ? await this.uploads.findById(fileId) : undefined;
    const presentedSignature =
      access.signature?.signature !== undefined || access.signature?.expires !== undefined;
    if (
      presentedSignature &&
      this.signer.verify(fileId, access.signature?.expires, access.signature?.signature)
    ) {
      if (upload) return upload;
      throw new DomainError(ErrorCode.NOT_FOUND, 'File not found');
    }
    if (upload && access.principal && (access.principal.isAdmin || access.principal.userId === upload.userId))
      return upload;
    if (upload && typeof access.shareToken === 'string' && (await this.sharedWith(access.shareToken, fileId)))
      return upload;
    if (presentedSignature) throw new DomainError(ErrorCode.FORBIDDEN, 'File link is invalid or has expired');
    if (!access.principal && access.shareToken === undefined)
      throw new DomainError(ErrorCode.UNAUTHORIZED, 'A signed link or a bearer token is required');
    throw new DomainError(ErrorCode.NOT_FOUND, 'File not found');
  }

  open(upload: UploadRecord, range?: ByteRange): Promise<Readable> {
    return this.driver.open(upload.key, range);
  }

  /** The whole file in memory, for consumers that need a buffer (speech-to-text); bounded by UPLOAD_MAX_SIZE. */
  async read(upload: UploadRecord): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of await this.driver.open(upload.key)) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  }

  private async sharedWith(shareToken: string, fileId: string): Promise<boolean> {
    const session = await this.sessions.findByShareToken(shareToken);
    if (!session || (session.shareExpiresAt && session.shareExpiresAt <= new Date())) return false;
    return session.messages.some((message) => message.fileId === fileId);
  }
}
