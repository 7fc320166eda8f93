/**
 * What client input may hold so that the database can store and compare it (issue 13). PostgreSQL,
 * under FerretDB, refuses U+0000 anywhere in a document or a filter (a failed lookup or a lost
 * message), and a UTF-16 string with an unpaired surrogate has no UTF-8 form (the driver would
 * silently store U+FFFD instead). Neither is ever meaningful in an id or in chat text, so the edge
 * refuses both, naming the field, instead of storing a changed text.
 */

/**
 * Ids a client sends back (session ids, file ids, message ids, share tokens): the server makes them
 * from hex, base64url and UUIDs; dots and colons are allowed for ids of earlier clients. Empty is
 * allowed here (an empty optional id is an absent one); required ids say so separately.
 */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._:-]*$/;
export const CLIENT_ID_CHARACTERS = "letters, digits, '.', '_', ':' or '-'";

/**
 * Free text (message content, names, metadata values, user ids): anything but U+0000 and unpaired
 * surrogates. With the `u` flag a surrogate pair is one code point outside D800-DFFF, so only an
 * unpaired half is outside this class.
 */
// eslint-disable-next-line no-control-regex -- U+0000 is exactly what this pattern refuses.
export const STORABLE_TEXT_PATTERN = /^[^\u0000\uD800-\uDFFF]*$/u;
export const UNSTORABLE_TEXT_RULE = 'must not contain U+0000 or an unpaired surrogate';

export function isClientId(value: string): boolean {
  return value.length > 0 && CLIENT_ID_PATTERN.test(value);
}

export function isStorableText(value: string): boolean {
  return STORABLE_TEXT_PATTERN.test(value);
}

/** The first string inside `value` (keys included, any depth) that is not storable, with its path. */
export function findUnstorableText(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return isStorableText(value) ? undefined : path;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const shown = isStorableText(key) ? key : JSON.stringify(key);
    const at = path === '' ? shown : `${path}.${shown}`;
    if (shown !== key) return at;
    const found = findUnstorableText(item, at);
    if (found !== undefined) return found;
  }
  return undefined;
}
