/**
 * Metadata keys the server writes into frames and stored messages (reply streaming and accounting,
 * file details, transcriptions, identities, notices). A client frame never sets them: the gateway
 * strips them from inbound metadata, so a forged `transcription` never reaches the model and a
 * forged `admin_name` or `status` never reaches another socket or the database. Keys starting with
 * `admin_` are the server's as well.
 */
export const SERVER_METADATA_KEYS: ReadonlySet<string> = new Set([
  // reply frames (SPEC 4.5, 4.6)
  'streaming',
  'done',
  'message_id',
  'seq',
  'catch_up',
  'stopped',
  'error',
  // reply accounting stored on AI messages (SPEC 8)
  'status',
  'model_id',
  'reply_id',
  'tokens',
  'prompt_tokens',
  'completion_tokens',
  'tokens_estimated',
  'response_time_ms',
  'first_token_ms',
  // file and voice messages (SPEC 4.7)
  'transcription',
  'file_name',
  'mime_type',
  'file_size',
  'external',
  // identities and notices (SPEC 4.8)
  'admin_id',
  'admin_name',
  'user_id',
  'event',
  'reason',
  'typing',
  // connection_status of an unbound socket: the announced id is not a session yet ([ext])
  'new_session',
]);

const SERVER_METADATA_PREFIX = 'admin_';

export function isServerMetadataKey(key: string): boolean {
  return SERVER_METADATA_KEYS.has(key) || key.startsWith(SERVER_METADATA_PREFIX);
}
