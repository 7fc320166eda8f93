import type { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { S3Config } from '@chatbox/common';
import type { ByteRange } from '../byte-range';
import { DEFAULT_S3_REGION, S3_PART_SIZE, S3_QUEUE_SIZE } from '../files.constants';
import { FileStorageDriver } from './file-storage-driver';

const MS_PER_SECOND = 1000;

/**
 * S3 or an S3-compatible store (MinIO, Ceph, R2, …) through the official SDK v3. Uploads stream
 * with lib-storage (memory bounded by part size × queue size); a failed upload is aborted (no
 * multipart parts left) and any object that did land is deleted.
 */
export class S3FileStorageDriver extends FileStorageDriver {
  readonly name = 's3';
  private readonly client: S3Client;
  private readonly bucket: string;

  constructor(config: S3Config) {
    super();
    if (!config.bucket) throw new Error('S3_BUCKET is required when STORAGE_DRIVER=s3');
    this.bucket = config.bucket;
    this.client = new S3Client({
      region: config.region ?? DEFAULT_S3_REGION,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      forcePathStyle: config.forcePathStyle,
      // Many S3-compatible stores reject the SDK's default trailing CRC checksums (aws-chunked);
      // checksums are sent only where the API requires them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(config.accessKeyId && config.secretAccessKey
        ? { credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey } }
        : {}),
    });
  }

  async put(key: string, body: Readable, mime: string): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: mime },
      partSize: S3_PART_SIZE,
      queueSize: S3_QUEUE_SIZE,
      leavePartsOnError: false,
    });
    // A failing body stream must stop the upload at once, not when the part buffer is full.
    let bodyError: unknown;
    const abortOnBodyError = (error: unknown) => {
      bodyError = error;
      void upload.abort().catch(() => undefined);
    };
    body.once('error', abortOnBodyError);
    try {
      await upload.done();
    } catch (error) {
      await upload.abort().catch(() => undefined);
      await this.remove(key).catch(() => undefined);
      // The body's own failure (e.g. over the size limit) is the cause; "Upload aborted" is its echo.
      throw bodyError ?? error;
    } finally {
      body.off('error', abortOnBodyError);
    }
  }

  async open(key: string, range?: ByteRange): Promise<Readable> {
    const result = await this.client.send(
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
      }),
    );
    return result.Body as Readable;
  }

  async remove(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /**
   * A presigned GET URL straight to the store, for deployments that hand out bucket links (e.g. to
   * a CDN). The service itself streams files through `GET /files/:id` (see FilesController).
   */
  presignedGetUrl(key: string, ttlMs: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: Math.max(1, Math.floor(ttlMs / MS_PER_SECOND)),
    });
  }

  onModuleDestroy(): void {
    this.client.destroy();
  }
}
