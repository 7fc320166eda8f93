import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EmbeddedDatabase, EmbeddedDatabaseOptions } from '../../libs/storage/src/embedded/embedded-database';

const root = resolve(__dirname, '../..');

/**
 * A temporary DATA_DIR for an embedded database. mkdtemp makes it mode 0700; when the tests run as
 * root, PostgreSQL runs as a system user that could not enter it and the cluster would be relocated
 * to /var/lib/chatbox-db (docs/decisions/0008), outliving the test's clean-up. 0755 keeps it here.
 */
export function databaseTempDir(prefix: string): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(directory, 0o755);
  return directory;
}

/** The embedded database as the service starts it (FerretDB on PostgreSQL), unsupervised. */
export function embeddedDatabase(
  dataDir: string,
  options: Partial<EmbeddedDatabaseOptions> = {},
): EmbeddedDatabase {
  return new EmbeddedDatabase({
    ferretDbBinary: join(root, '.tools/bin/ferretdb'),
    provisionScript: join(root, 'scripts/provision-ferretdb.sh'),
    dataDir,
    ...options,
  });
}
