import type { Collection, CreateIndexesOptions, IndexDescription } from 'mongodb';

/** MongoDB's code for a collection that does not exist yet. */
const NAMESPACE_NOT_FOUND = 26;

/**
 * Creates the named indexes the collection lacks. Asking again for existing ones is a no-op on
 * MongoDB, but FerretDB (the embedded default) drops the connection on a multi-index
 * `createIndexes` whose indexes all exist, which every instance after the first would send when
 * several share one database (SPEC 10).
 */
export async function createMissingIndexes(
  collection: Pick<Collection, 'indexes' | 'createIndexes'>,
  specs: (IndexDescription & { name: string })[],
  options?: CreateIndexesOptions,
): Promise<void> {
  let existing: string[] = [];
  try {
    existing = (await collection.indexes()).map((index) => String(index.name));
  } catch (error) {
    if ((error as { code?: number }).code !== NAMESPACE_NOT_FOUND) throw error;
  }
  const missing = specs.filter((spec) => !existing.includes(spec.name));
  if (missing.length > 0) await collection.createIndexes(missing, options);
}
