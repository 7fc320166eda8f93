import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig, InjectConfig } from '@chatbox/common';
import { FileStorageDriver } from './drivers/file-storage-driver';
import { CLEANUP_BATCH } from './files.constants';
import { UploadReferenceChecker } from './upload-ports';
import { UploadsRepository } from './uploads.repository';

/**
 * Removes uploads that no message references once they are older than UPLOAD_ORPHAN_TTL (uploaded
 * and never sent, or sent into a message that failed), every UPLOAD_CLEANUP_INTERVAL. The bytes go
 * first, then the record: a pass cut short leaves a record the next pass removes, never bytes
 * nobody knows. Running on every instance is harmless (removals are idempotent).
 */
@Injectable()
export class UploadCleanupService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(UploadCleanupService.name);
  private timer?: NodeJS.Timeout;
  private sweeping = false;

  constructor(
    private readonly uploads: UploadsRepository,
    private readonly driver: FileStorageDriver,
    private readonly references: UploadReferenceChecker,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.storage.uploadOrphanGraceMs === 0) return;
    this.timer = setInterval(() => void this.sweep(), this.config.storage.uploadCleanupIntervalMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** One pass over uploads older than the grace period; returns the ids it removed. */
  async sweep(now = new Date()): Promise<string[]> {
    const grace = this.config.storage.uploadOrphanGraceMs;
    if (grace === 0 || this.sweeping) return [];
    this.sweeping = true;
    const removed: string[] = [];
    try {
      const before = new Date(now.getTime() - grace);
      let afterId: string | undefined;
      for (;;) {
        const batch = await this.uploads.findOlderThan(before, CLEANUP_BATCH, afterId);
        if (batch.length === 0) break;
        afterId = batch[batch.length - 1].id;
        const referenced = await this.references.referencedAmong(batch.map((upload) => upload.id));
        for (const upload of batch.filter((candidate) => !referenced.has(candidate.id))) {
          await this.driver.remove(upload.key);
          await this.uploads.delete(upload.id);
          removed.push(upload.id);
        }
      }
      if (removed.length > 0) this.logger.log({ count: removed.length }, 'unreferenced uploads removed');
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'upload clean-up failed; next interval retries');
    } finally {
      this.sweeping = false;
    }
    return removed;
  }
}
