import { rmSync } from 'node:fs';
import type { EmbeddedDatabase } from '../../libs/storage/src/embedded/embedded-database';

export default async function globalTeardown(): Promise<void> {
  const database = (globalThis as { __chatboxTestDatabase?: EmbeddedDatabase }).__chatboxTestDatabase;
  if (!database) return;
  await database.stop();
  if (process.env.TEST_FERRETDB_DATA_DIR)
    rmSync(process.env.TEST_FERRETDB_DATA_DIR, { recursive: true, force: true });
}
