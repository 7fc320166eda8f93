import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ByteRange } from '../byte-range';
import { PARTIAL_SUFFIX } from '../files.constants';
import { FileStorageDriver } from './file-storage-driver';

const TEMP_SUFFIX_BYTES = 6;

/**
 * Disk under `DATA_DIR/uploads`. Bytes go to a temp file in the same directory and are renamed into
 * place only when complete (atomic on one file system), so a reader never sees half a file.
 * Keys are server-generated ids, never client names.
 */
export class LocalFileStorageDriver extends FileStorageDriver {
  readonly name = 'local';
  private ready?: Promise<unknown>;

  constructor(private readonly directory: string) {
    super();
  }

  async put(key: string, body: Readable): Promise<void> {
    await (this.ready ??= mkdir(this.directory, { recursive: true }));
    const temp = join(
      this.directory,
      `${key}.${randomBytes(TEMP_SUFFIX_BYTES).toString('hex')}${PARTIAL_SUFFIX}`,
    );
    try {
      await pipeline(body, createWriteStream(temp, { flags: 'wx' }));
      await rename(temp, this.pathOf(key));
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  async open(key: string, range?: ByteRange): Promise<Readable> {
    const stream = createReadStream(this.pathOf(key), range ? { start: range.start, end: range.end } : {});
    // Surface a missing file as a rejected promise rather than a stream error after headers.
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
    return stream;
  }

  async remove(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  private pathOf(key: string): string {
    return join(this.directory, key);
  }
}
