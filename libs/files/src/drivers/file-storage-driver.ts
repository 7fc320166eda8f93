import type { Readable } from 'node:stream';
import type { ByteRange } from '../byte-range';

/**
 * Where file bytes live (`STORAGE_DRIVER`). `put` consumes a stream and either stores all of it or
 * nothing: on any failure (including the body stream failing, e.g. over the size limit) no partial
 * object is left behind.
 */
export abstract class FileStorageDriver {
  abstract readonly name: string;
  abstract put(key: string, body: Readable, mime: string): Promise<void>;
  /** The stored bytes, or the inclusive range of them. */
  abstract open(key: string, range?: ByteRange): Promise<Readable>;
  abstract remove(key: string): Promise<void>;
}
