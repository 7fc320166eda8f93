import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FerretDbProcess } from '../../libs/storage/src/embedded/ferretdb-process';

/**
 * Starts one private FerretDB (SQLite backend, temporary data dir, free port) for the whole run.
 * Each test file uses its own database on it. Set TEST_MONGO_URI to run against a real MongoDB instead.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_MONGO_URI) return;
  const root = resolve(__dirname, '../..');
  const dataDir = mkdtempSync(join(tmpdir(), 'chatbox-test-db-'));
  const database = new FerretDbProcess({
    binary: join(root, '.tools/bin/ferretdb'),
    provisionScript: join(root, 'scripts/provision-ferretdb.sh'),
    dataDir,
  });
  process.env.TEST_MONGO_URI = await database.start();
  process.env.TEST_FERRETDB_DATA_DIR = dataDir;
  (globalThis as { __chatboxTestDatabase?: FerretDbProcess }).__chatboxTestDatabase = database;
}
