import { join } from 'node:path';
import { Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { APP_CONFIG, AppConfig } from '@chatbox/common';
import { FileStorageDriver } from './drivers/file-storage-driver';
import { LocalFileStorageDriver } from './drivers/local.driver';
import { S3FileStorageDriver } from './drivers/s3.driver';
import { LOCAL_UPLOADS_DIR } from './files.constants';
import { FilesController } from './files.controller';
import { FilesService } from './files.service';
import { FileUrlSigner } from './file-url-signer';
import { UPLOAD_MODEL, UploadSchema } from './upload.schema';
import { UploadCleanupService } from './upload-cleanup.service';
import { SessionMessageReferences, UploadReferenceChecker } from './upload-ports';
import { UploadService } from './upload.service';
import { UploadsRepository } from './uploads.repository';

/**
 * Files, photos and voice notes (SPEC 6): upload, signed download links, the `uploads` collection
 * and the storage driver chosen by `STORAGE_DRIVER`. Depends on storage and common only; the upload
 * rate limit uses the app's one `RateLimiter` (libs/common port, bound app-wide by the session
 * module's `RedisLinkModule`).
 */
@Module({
  imports: [MongooseModule.forFeature([{ name: UPLOAD_MODEL, schema: UploadSchema }])],
  controllers: [FilesController],
  providers: [
    {
      provide: FileStorageDriver,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): FileStorageDriver =>
        config.storage.driver === 's3'
          ? new S3FileStorageDriver(config.storage.s3)
          : new LocalFileStorageDriver(join(config.storage.dataDir, LOCAL_UPLOADS_DIR)),
    },
    UploadsRepository,
    UploadService,
    FilesService,
    FileUrlSigner,
    UploadCleanupService,
    { provide: UploadReferenceChecker, useClass: SessionMessageReferences },
  ],
  exports: [FilesService, FileUrlSigner],
})
export class FilesModule {}
