import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Injectable, Logger } from '@nestjs/common';
import { AppConfig, DomainError, ErrorCode, InjectConfig, Principal } from '@chatbox/common';
import { ConversationStore } from '@chatbox/storage';
import type { ByteRange } from './byte-range';
import { AcceptedType, inspectHead, readHead, RefusedContent } from './content-inspector';
import { FileStorageDriver } from './drivers/file-storage-driver';
import { FILE_ID_BYTES, FILE_ID_PATTERN, REMOTE_FILE_TIMEOUT_MS, SNIFF_BYTES } from './files.constants';
import { sanitizeFilename } from './filename';
import { FileUrlSigner } from './file-url-signer';
import { recordStoredUpload } from './record-upload';
import { UploadRecord, UploadsRepository } from './uploads.repository';

/** How a `GET /files/:id` caller proved access. */
export interface FileAccess {
  signature?: { expires?: unknown; signature?: unknown };
  principal?: Principal;
  shareToken?: unknown;
}

/** Why a remote file could not be imported (`FilesService.importFromUrl`); the message is for the log. */
export class RemoteFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RemoteFileError';
  }
}

/** Options of `FilesService.importFromUrl`. */
export interface RemoteFileOptions {
  filename?: string;
  mimeType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Only http(s) URLs are fetched. */
function remoteUrlOf(url: string): URL {
  let target: URL;
  try {
    target = new URL(url);
  } catch (error) {
    throw new RemoteFileError('not a valid URL', { cause: error });
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:')
    throw new RemoteFileError(`scheme ${target.protocol} is not allowed`);
  return target;
}

async function inspectRemoteHead(
  head: Buffer,
  filename: string,
  declaredMime: string,
): Promise<AcceptedType> {
  try {
    return await inspectHead(head, filename, declaredMime);
  } catch (error) {
    if (error instanceof RefusedContent) throw new RemoteFileError(error.message, { cause: error });
    throw error;
  }
}

/**
 * The head and then the `rest` of the chunks as one byte stream that fails as soon as more than
 * `maxSize` bytes went through; `size()` is the count so far.
 */
function sizeCappedBody(
  head: Buffer,
  rest: AsyncIterator<Uint8Array> | undefined,
  maxSize: number,
): { stream: Readable; size: () => number } {
  let size = 0;
  const pass = (chunk: Buffer) => {
    size += chunk.length;
    if (size > maxSize) throw new RemoteFileError(`file is over the limit of ${maxSize} bytes`);
    return chunk;
  };
  const stream = Readable.from(
    (async function* () {
      yield pass(head);
      if (!rest) return;
      for (let next = await rest.next(); !next.done; next = await rest.next())
        yield pass(Buffer.from(next.value));
    })(),
    { objectMode: false },
  );
  return { stream, size: () => size };
}

/**
 * Lookups and access rules for stored files; used by the REST controller and the chat session.
 * Also stores files the service itself obtained (speech audio, files an AI announced) as uploads
 * owned by the session's user, so they are served, signed and shared exactly like uploads.
 */
@Injectable()
export class FilesService {
  private readonly logger = new Logger(FilesService.name);

  constructor(
    private readonly uploads: UploadsRepository,
    private readonly driver: FileStorageDriver,
    private readonly conversations: ConversationStore,
    private readonly signer: FileUrlSigner,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  /**
   * Stores bytes the service produced itself (text-to-speech audio) as an upload owned by `userId`.
   * The type is trusted as given: it comes from a provider the operator configured, not a client.
   */
  async storeGenerated(userId: string, bytes: Buffer, filename: string, mime: string): Promise<UploadRecord> {
    return this.record(userId, sanitizeFilename(filename), mime, bytes.length, (id) =>
      this.driver.put(id, Readable.from([bytes]), mime),
    );
  }

  /**
   * Downloads a file an AI provider announced (Dify `message_file`) and stores it as an upload owned
   * by `userId`: http(s) only, `UPLOAD_MAX_SIZE` enforced while streaming, one timeout for the whole
   * download (`timeoutMs`, default `REMOTE_FILE_TIMEOUT_MS`; `signal` cancels it), type sniffed
   * against the upload allow-list (the server's claimed type and the name are only hints).
   * @throws RemoteFileError when the URL, the response, the size or the type is not acceptable.
   */
  async importFromUrl(userId: string, url: string, options: RemoteFileOptions = {}): Promise<UploadRecord> {
    const target = remoteUrlOf(url);
    const response = await this.fetchRemote(target, options);
    const chunks = response.body[Symbol.asyncIterator]();
    try {
      const record = await this.storeRemote(userId, target, response.headers, chunks, options);
      this.logger.log(
        { fileId: record.id, userId, size: record.size, mime: record.mime },
        'remote file stored',
      );
      return record;
    } catch (error) {
      void chunks.return?.().catch(() => undefined);
      if (error instanceof RemoteFileError) throw error;
      throw new RemoteFileError(`download failed: ${(error as Error).message}`, { cause: error });
    }
  }

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
    // A signature with a share token is a shared session's link: valid only while that share is.
    const shareToken = typeof access.shareToken === 'string' ? access.shareToken : undefined;
    if (
      presentedSignature &&
      this.signer.verify(
        fileId,
        access.signature?.expires,
        access.signature?.signature,
        Date.now(),
        shareToken,
      ) &&
      (shareToken === undefined || (upload !== undefined && (await this.sharedWith(shareToken, fileId))))
    ) {
      if (upload) return upload;
      throw new DomainError(ErrorCode.NOT_FOUND, 'File not found');
    }
    if (upload && access.principal && (access.principal.isAdmin || access.principal.userId === upload.userId))
      return upload;
    if (upload && !presentedSignature && shareToken && (await this.sharedWith(shareToken, fileId)))
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

  /** Fetches within the timeout; refuses error statuses and a declared length over UPLOAD_MAX_SIZE. */
  private async fetchRemote(
    target: URL,
    options: RemoteFileOptions,
  ): Promise<{ headers: Headers; body: AsyncIterable<Uint8Array> }> {
    const maxSize = this.config.storage.uploadMaxSize;
    const timeout = AbortSignal.timeout(options.timeoutMs ?? REMOTE_FILE_TIMEOUT_MS);
    const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
    let response: Response;
    try {
      response = await fetch(target, { signal, redirect: 'follow' });
    } catch (error) {
      throw new RemoteFileError(`download failed: ${(error as Error).message}`, { cause: error });
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel().catch(() => undefined);
      throw new RemoteFileError(`download answered HTTP ${response.status}`);
    }
    const declaredLength = Number(response.headers.get('content-length') ?? NaN);
    if (declaredLength > maxSize) {
      await response.body.cancel().catch(() => undefined);
      throw new RemoteFileError(`file of ${declaredLength} bytes is over the limit of ${maxSize}`);
    }
    return { headers: response.headers, body: response.body as unknown as AsyncIterable<Uint8Array> };
  }

  /** Sniffs the first bytes against the upload allow-list, then streams the whole file to the driver. */
  private async storeRemote(
    userId: string,
    target: URL,
    headers: Headers,
    chunks: AsyncIterator<Uint8Array>,
    options: RemoteFileOptions,
  ): Promise<UploadRecord> {
    const maxSize = this.config.storage.uploadMaxSize;
    const { head, ended } = await readHead(chunks, SNIFF_BYTES);
    if (head.length === 0) throw new RemoteFileError('the file is empty');
    if (head.length > maxSize) throw new RemoteFileError(`file is over the limit of ${maxSize} bytes`);
    const filename = sanitizeFilename(
      options.filename ?? decodeURIComponent(target.pathname.split('/').pop() ?? ''),
    );
    const declaredMime = options.mimeType ?? headers.get('content-type')?.split(';')[0].trim() ?? '';
    const accepted = await inspectRemoteHead(head, filename, declaredMime);
    const body = sizeCappedBody(head, ended ? undefined : chunks, maxSize);
    return this.record(
      userId,
      filename,
      accepted.mime,
      () => body.size(),
      (id) => this.driver.put(id, body.stream, accepted.mime),
    );
  }

  /** Writes through the driver, then records the upload; the stored bytes are removed when recording fails. */
  private async record(
    userId: string,
    filename: string,
    mime: string,
    size: number | (() => number),
    write: (key: string) => Promise<void>,
  ): Promise<UploadRecord> {
    const id = randomBytes(FILE_ID_BYTES).toString('hex');
    await write(id);
    const record: UploadRecord = {
      id,
      userId,
      filename,
      mime,
      size: typeof size === 'function' ? size() : size,
      key: id,
      createdAt: new Date(),
    };
    return recordStoredUpload(this.uploads, this.driver, record);
  }

  private async sharedWith(shareToken: string, fileId: string): Promise<boolean> {
    const session = await this.conversations.findByShareToken(shareToken);
    if (!session || (session.shareExpiresAt && session.shareExpiresAt <= new Date())) return false;
    return this.conversations.sessionReferencesFile(session.id, fileId);
  }
}
