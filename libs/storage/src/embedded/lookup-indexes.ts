import { createHash } from 'node:crypto';
import postgres from 'postgres';

/** The fields of one collection that the service finds documents by, with equality. */
export interface EqualityLookup {
  collection: string;
  fields: readonly string[];
}

/** Where FerretDB keeps a collection's table name (one row per collection, in the database's schema). */
const FERRETDB_METADATA_TABLE = '_ferretdb_database_metadata';
/** FerretDB's one column: the whole document. */
const FERRETDB_DOCUMENT_COLUMN = '_jsonb';
/** Suffix of our indexes, so that they are told apart from FerretDB's own (`…_idx`). */
const LOOKUP_INDEX_SUFFIX = '_lookup';
const POSTGRES_MAX_IDENTIFIER_BYTES = 63;
const SHORTENED_NAME_HASH_CHARS = 8;
/** PostgreSQL's SQLSTATE for a table that does not exist. */
const UNDEFINED_TABLE = '42P01';
/** The server was started a moment ago on a local socket: longer means it is not coming. */
const CONNECT_TIMEOUT_SECONDS = 10;

/**
 * FerretDB 1.24 on PostgreSQL filters by equality with `_jsonb->'field' @> '"value"'`, which the
 * btree indexes it creates for `createIndexes` (on `_jsonb->'field'`) cannot serve: every find, and
 * every update (it selects before it updates), reads the whole table. A GIN index with
 * `jsonb_path_ops` on the same expression serves `@>`. FerretDB does not know these indexes; it
 * ignores them (collStats skips unknown index names) and PostgreSQL maintains them with the table
 * (docs/decisions/0010). Creates those missing and returns the names created; collections FerretDB
 * has not created yet are skipped (the service calls this after its own createIndexes).
 */
export async function ensureLookupIndexes(
  connection: postgres.Options<Record<string, never>>,
  database: string,
  lookups: readonly EqualityLookup[],
): Promise<string[]> {
  // Host, port, user and database all given: the client would take missing ones from PG* variables.
  const sql = postgres({
    ...connection,
    max: 1,
    connect_timeout: CONNECT_TIMEOUT_SECONDS,
    onnotice: () => undefined,
  });
  const created: string[] = [];
  try {
    for (const { collection, fields } of lookups) {
      const rows = await sql<{ table: string }[]>`
        SELECT ${sql.unsafe(FERRETDB_DOCUMENT_COLUMN)}->>'table' AS table
        FROM ${sql(database)}.${sql(FERRETDB_METADATA_TABLE)}
        WHERE ${sql.unsafe(FERRETDB_DOCUMENT_COLUMN)}->>'_id' = ${collection}`.catch(
        (error: { code?: string }) => {
          // No metadata table: FerretDB has not created this database yet.
          if (error.code === UNDEFINED_TABLE) return [];
          throw error;
        },
      );
      const table = rows[0]?.table;
      if (!table) continue;
      for (const field of fields) {
        const name = lookupIndexName(table, field);
        const existing =
          await sql`SELECT 1 FROM pg_indexes WHERE schemaname = ${database} AND indexname = ${name}`;
        if (existing.length > 0) continue;
        await sql`
          CREATE INDEX IF NOT EXISTS ${sql(name)} ON ${sql(database)}.${sql(table)}
          USING gin ((${sql.unsafe(FERRETDB_DOCUMENT_COLUMN)} -> ${sql.unsafe(literal(field))}) jsonb_path_ops)`;
        created.push(name);
      }
    }
    return created;
  } finally {
    await sql.end();
  }
}

/**
 * `<table>_<field>_lookup`; when longer than PostgreSQL keeps (it would truncate, and two fields
 * could collide), the table part is cut and a hash of the whole name added. FerretDB's table names
 * are ASCII.
 */
export function lookupIndexName(table: string, field: string): string {
  const full = `${table}_${field}${LOOKUP_INDEX_SUFFIX}`;
  if (full.length <= POSTGRES_MAX_IDENTIFIER_BYTES) return full;
  const hash = createHash('sha1').update(full).digest('hex').slice(0, SHORTENED_NAME_HASH_CHARS);
  const room = POSTGRES_MAX_IDENTIFIER_BYTES - hash.length - LOOKUP_INDEX_SUFFIX.length - 1;
  return `${table.slice(0, room)}_${hash}${LOOKUP_INDEX_SUFFIX}`;
}

/** A SQL string literal (field names come from our code, but quote them properly all the same). */
function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
