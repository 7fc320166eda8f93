import { FileStorageDriver } from './drivers/file-storage-driver';
import { UploadRecord, UploadsRepository } from './uploads.repository';

/**
 * Records bytes already written through the driver; when recording fails the bytes are removed,
 * so storage never keeps a file the database does not know.
 */
export async function recordStoredUpload(
  uploads: UploadsRepository,
  driver: FileStorageDriver,
  record: UploadRecord,
): Promise<UploadRecord> {
  try {
    await uploads.insert(record);
  } catch (error) {
    await driver.remove(record.key).catch(() => undefined);
    throw error;
  }
  return record;
}
