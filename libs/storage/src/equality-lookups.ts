import type { EqualityLookup } from './embedded/lookup-indexes';
import { MESSAGES_COLLECTION } from './message.schema';

/**
 * The fields the repositories find documents by with equality on their hot paths; on the embedded
 * PostgreSQL each gets a lookup index (embedded/lookup-indexes.ts, docs/decisions/0010).
 */
export function equalityLookups(sessionsCollection: string): EqualityLookup[] {
  return [
    // By id: every counter and field update (FerretDB reads before it writes). By user: the
    // active-session lookup when a session starts, and the user's list.
    { collection: sessionsCollection, fields: ['_id', 'uid'] },
    // A session's messages: its history, a context window not in memory, its counts.
    { collection: MESSAGES_COLLECTION, fields: ['sid'] },
  ];
}
