import { databaseTempDir, embeddedDatabase } from './embedded-database';
import type { EmbeddedDatabase } from '../../libs/storage/src/embedded/embedded-database';

/**
 * Starts one private embedded database (FerretDB on PostgreSQL, as `make run` does, in a temporary
 * data dir on free ports) for the whole run. Each test file uses its own database on it; the Jest
 * workers share it, so their driver pools together stay below FerretDB's pool (StorageModule).
 * Set TEST_MONGO_URI to run against a real MongoDB instead.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_MONGO_URI) return;
  const dataDir = databaseTempDir('chatbox-test-db-');
  const database = embeddedDatabase(dataDir);
  process.env.TEST_MONGO_URI = await database.start();
  process.env.TEST_FERRETDB_DATA_DIR = dataDir;
  (globalThis as { __chatboxTestDatabase?: EmbeddedDatabase }).__chatboxTestDatabase = database;
}
