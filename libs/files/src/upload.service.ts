import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { Injectable, Logger } from '@nestjs/common';
import busboy, { type Busboy, type FileInfo } from 'busboy';
import {
  AppConfig,
  ChatboxEvents,
  DomainError,
  ErrorCode,
  InjectConfig,
  Principal,
  RateLimiter,
} from '@chatbox/common';
import { AcceptedType, inspectHead, isUtf8Text, readHead, RefusedContent } from './content-inspector';
import { FileStorageDriver } from './drivers/file-storage-driver';
import { FILE_ID_BYTES, MULTIPART_LIMITS, SNIFF_BYTES, UPLOAD_FIELD } from './files.constants';
import { sanitizeFilename } from './filename';
import { badUpload, quotaExceeded, unsupportedContent, uploadTooLarge } from './upload-errors';
import { recordStoredUpload } from './record-upload';
import { UploadRecord, UploadsRepository } from './uploads.repository';

const LIMITER = 'uploads';

/**
 * Receives `multipart/form-data` uploads: streams field `file` to the storage driver with the size
 * limit enforced while streaming, sniffs the first bytes against the allow-list and records the
 * upload. Nothing is kept when any step fails.
 */
@Injectable()
export class UploadService {
  private readonly logger = new Logger(UploadService.name);

  constructor(
    private readonly driver: FileStorageDriver,
    private readonly uploads: UploadsRepository,
    private readonly limiter: RateLimiter,
    private readonly events: ChatboxEvents,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  /**
   * Admission first (per-user rate limit, storage quota), then the body. The quota left lowers the
   * streaming size limit, so a user can overshoot it only by uploads running at the same moment.
   */
  async receive(request: IncomingMessage, principal: Principal): Promise<UploadRecord> {
    const { uploadRateLimit, uploadRateWindowMs, uploadQuotaBytes, uploadMaxSize } = this.config.storage;
    const decision = await this.limiter.hit(
      `upload:${principal.userId}`,
      uploadRateLimit,
      uploadRateWindowMs,
    );
    if (!decision.allowed) {
      this.events.emit({ type: 'ratelimit.blocked', limiter: LIMITER });
      request.resume();
      throw new DomainError(ErrorCode.TOO_MANY_REQUESTS, 'Too many uploads; slow down', {
        retryAfterMs: decision.retryAfterMs,
      });
    }
    const left =
      uploadQuotaBytes > 0
        ? uploadQuotaBytes - (await this.uploads.totalSizeOf(principal.userId))
        : Number.POSITIVE_INFINITY;
    if (left <= 0) {
      request.resume();
      throw quotaExceeded(uploadQuotaBytes, 0);
    }
    const limit = Math.min(uploadMaxSize, left);
    const overLimit = () =>
      limit < uploadMaxSize ? quotaExceeded(uploadQuotaBytes, left) : uploadTooLarge(limit);
    return this.parse(request, principal, limit, overLimit);
  }

  private parse(
    request: IncomingMessage,
    principal: Principal,
    maxSize: number,
    overLimit: () => Error,
  ): Promise<UploadRecord> {
    let parser: Busboy;
    try {
      // busboy reports 'limit' on reaching fileSize, so one byte more lets a file of exactly maxSize through.
      // Browsers send file names as raw UTF-8 in Content-Disposition (busboy assumes latin1).
      parser = busboy({
        headers: request.headers,
        defParamCharset: 'utf8',
        limits: { ...MULTIPART_LIMITS, fileSize: maxSize + 1 },
      });
    } catch {
      return Promise.reject(
        badUpload(`Expected a multipart/form-data body with a field named '${UPLOAD_FIELD}'`),
      );
    }
    return new Promise<UploadRecord>((resolve, reject) => {
      let seenFile = false;
      let current: Readable | undefined;
      let settled = false;
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        current?.destroy(error instanceof Error ? error : undefined);
        // Discard the rest of the body so the answer reaches the client; nothing more is parsed.
        request.unpipe(parser);
        request.resume();
        reject(error);
      };
      parser.on('file', (field, stream, info) => {
        if (seenFile || settled) return void stream.resume();
        seenFile = true;
        if (field !== UPLOAD_FIELD) {
          stream.resume();
          return fail(
            badUpload(`Unexpected file field '${field}': send the file in the field '${UPLOAD_FIELD}'`),
          );
        }
        current = stream;
        stream.once('limit', () => stream.destroy(overLimit()));
        this.store(stream, info, principal, overLimit).then((record) => {
          settled = true;
          resolve(record);
        }, fail);
      });
      parser.once('close', () => {
        if (!seenFile) fail(badUpload(`Missing multipart field '${UPLOAD_FIELD}'`));
      });
      parser.once('error', (error: Error) => fail(badUpload(`Malformed multipart body: ${error.message}`)));
      // A client that goes away mid-upload must not leave a stream waiting (and a temp file) forever.
      request.once('close', () => {
        if (!request.complete) fail(badUpload('Upload interrupted'));
      });
      request.pipe(parser);
    });
  }

  private async store(
    stream: Readable,
    info: FileInfo,
    principal: Principal,
    overLimit: () => Error,
  ): Promise<UploadRecord> {
    const chunks = stream[Symbol.asyncIterator]();
    const { head, ended } = await readHead(chunks, SNIFF_BYTES);
    if (head.length === 0) throw badUpload('The file is empty (0 bytes)');

    const filename = sanitizeFilename(info.filename);
    let accepted: AcceptedType;
    try {
      accepted = await inspectHead(head, filename, info.mimeType ?? '');
    } catch (error) {
      if (error instanceof RefusedContent) throw unsupportedContent(error.message);
      throw error;
    }

    const id = randomBytes(FILE_ID_BYTES).toString('hex');
    let size = 0;
    const body = Readable.from(
      (async function* () {
        const decoder = accepted.text ? new TextDecoder('utf-8', { fatal: true }) : undefined;
        const pass = (chunk: Buffer) => {
          if (decoder && !isUtf8Text(chunk, decoder))
            throw unsupportedContent('A text file must be UTF-8 text without NUL bytes');
          size += chunk.length;
          return chunk;
        };
        yield pass(head);
        if (ended) return;
        for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
          yield pass(next.value as Buffer);
        }
      })(),
      { objectMode: false },
    );
    await this.driver.put(id, body, accepted.mime);
    // busboy ends a file stream early (truncated) when it hits the limit: never keep that.
    if ((stream as Readable & { truncated?: boolean }).truncated) {
      await this.driver.remove(id).catch(() => undefined);
      throw overLimit();
    }
    const record: UploadRecord = {
      id,
      userId: principal.userId,
      filename,
      mime: accepted.mime,
      size,
      key: id,
      createdAt: new Date(),
    };
    await recordStoredUpload(this.uploads, this.driver, record);
    this.logger.log({ fileId: id, userId: principal.userId, size, mime: accepted.mime }, 'file uploaded');
    return record;
  }
}
