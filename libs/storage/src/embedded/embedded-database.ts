import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { EmbeddedLog, EmbeddedPostgres } from './embedded-postgres';
import { FerretDbProcess } from './ferretdb-process';
import { ensureLookupIndexes, EqualityLookup } from './lookup-indexes';

/** FerretDB's storage for the embedded default: PostgreSQL unless told otherwise (docs/decisions/0008). */
export type EmbeddedBackend = 'postgresql' | 'sqlite';

/**
 * FerretDB's pgx pool (`pool_max_conns`, FerretDB's own default). An update holds one connection
 * and asks for another: when every connection is held that way FerretDB 1.24 deadlocks for good, so
 * the driver pools of all clients together must stay below this (StorageModule: mongoMaxPoolSize).
 */
export const FERRETDB_POOL_MAX_CONNS = 50;
/** PostgreSQL connections beyond FerretDB's pool: 3 reserved for superusers and a few for tools. */
const POSTGRES_SPARE_CONNECTIONS = 10;

export interface EmbeddedDatabaseOptions {
  ferretDbBinary: string;
  /** Builds FerretDB when the binary is missing (scripts/provision-ferretdb.sh). */
  provisionScript?: string;
  /** `DATA_DIR/db`: FerretDB's state and pid file, the PostgreSQL cluster in `pg/` (or SQLite files). */
  dataDir: string;
  backend?: EmbeddedBackend;
  /** Restart FerretDB and PostgreSQL when they exit unexpectedly (the service, not tests). */
  supervise?: boolean;
  /** See EmbeddedPostgresOptions.relocationRoot (tests point it at a temporary directory). */
  relocationRoot?: string;
  log?: EmbeddedLog;
}

/**
 * The embedded MongoDB-compatible database (SPEC 11): PostgreSQL first, then FerretDB on it;
 * stopped in the reverse order. Both are children of this process under the parent-death watchdog.
 */
export class EmbeddedDatabase {
  readonly postgres?: EmbeddedPostgres;
  readonly ferretDb: FerretDbProcess;

  constructor(private readonly options: EmbeddedDatabaseOptions) {
    const backend = options.backend ?? 'postgresql';
    const postgres =
      backend === 'postgresql'
        ? new EmbeddedPostgres({
            dataDir: join(options.dataDir, 'pg'),
            maxConnections: FERRETDB_POOL_MAX_CONNS + POSTGRES_SPARE_CONNECTIONS,
            supervise: options.supervise,
            relocationRoot: options.relocationRoot,
            log: options.log,
          })
        : undefined;
    this.postgres = postgres;
    this.ferretDb = new FerretDbProcess({
      binary: options.ferretDbBinary,
      provisionScript: options.provisionScript,
      dataDir: options.dataDir,
      backend: postgres
        ? {
            handler: 'postgresql',
            postgresqlUrl: () => postgres.ferretDbUrl({ pool_max_conns: FERRETDB_POOL_MAX_CONNS }),
          }
        : { handler: 'sqlite' },
      supervise: options.supervise,
      log: options.log,
    });
  }

  /** The MongoDB URI of FerretDB (once started). */
  get uri(): string {
    return this.ferretDb.uri;
  }

  /** `FerretDB on PostgreSQL 18.4` or `FerretDB on SQLite`, for the start-up log. */
  get description(): string {
    return this.postgres
      ? `FerretDB on PostgreSQL ${this.postgres.version ?? ''}`.trim()
      : 'FerretDB on SQLite';
  }

  /** Starts what is not running (a restart after killForTest starts FerretDB only); resolves to the URI. */
  async start(): Promise<string> {
    await this.ferretDb.provision();
    await this.postgres?.start();
    if (this.postgres?.createdCluster) this.warnAboutSqliteData();
    try {
      return await this.ferretDb.start();
    } catch (error) {
      await this.postgres?.stop();
      throw error;
    }
  }

  /** Data of the SQLite backend (the default before docs/decisions/0008) is not carried over. */
  private warnAboutSqliteData(): void {
    const files = readdirSync(this.options.dataDir).filter((name) => name.endsWith('.sqlite'));
    if (files.length > 0)
      this.options.log?.(
        'warn',
        `${this.options.dataDir} holds databases of FerretDB's SQLite backend (${files.join(', ')}): ` +
          `they are not migrated to PostgreSQL; EMBEDDED_DB_BACKEND=sqlite still uses them`,
      );
  }

  /**
   * On PostgreSQL, the indexes FerretDB's equality filters can use (lookup-indexes.ts); call once
   * the collections exist. Returns the names created (none on SQLite, whose filters are not pushed
   * down but for `_id`).
   */
  async ensureLookupIndexes(database: string, lookups: readonly EqualityLookup[]): Promise<string[]> {
    if (!this.postgres) return [];
    return ensureLookupIndexes(this.postgres.connection, database, lookups);
  }

  async stop(): Promise<void> {
    try {
      await this.ferretDb.stop();
    } finally {
      await this.postgres?.stop();
    }
  }

  /** For fault tests: signals FerretDB (SIGKILL: the database is gone; SIGSTOP/SIGCONT: it hangs). */
  killForTest(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.ferretDb.killForTest(signal);
  }
}
