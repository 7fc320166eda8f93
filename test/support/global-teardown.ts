import { rmSync } from 'node:fs';
import type { FerretDbProcess } from '../../libs/storage/src/embedded/ferretdb-process';

export default async function globalTeardown(): Promise<void> {
  const database = (globalThis as { __chatboxTestDatabase?: FerretDbProcess }).__chatboxTestDatabase;
  if (!database) return;
  await database.stop();
  if (process.env.TEST_FERRETDB_DATA_DIR)
    rmSync(process.env.TEST_FERRETDB_DATA_DIR, { recursive: true, force: true });
}
