import type { Sender } from '@chatbox/storage';

/**
 * A message for the session's sockets, in the envelope of SPEC 4.2 (snake_case, string metadata).
 * The gateway serialises it as is; the session module never sees a socket.
 */
export interface ChatEvent {
  type: string;
  sender: Sender;
  timestamp: string;
  id?: string;
  session_id?: string;
  user_id?: string;
  content?: string;
  file_id?: string;
  file_url?: string;
  model_id?: string;
  models?: { id: string; name: string }[];
  metadata?: Record<string, string>;
  error?: { code: string; message: string; recoverable: boolean; retry_after?: number };
}

export type ChatEventFields = Omit<ChatEvent, 'type' | 'sender' | 'timestamp'> & { timestamp?: string };

export function chatEvent(type: string, sender: Sender, fields: ChatEventFields = {}): ChatEvent {
  const event: ChatEvent = { type, sender, timestamp: fields.timestamp ?? new Date().toISOString() };
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === '' || key === 'timestamp') continue;
    if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) continue;
    (event as unknown as Record<string, unknown>)[key] = value;
  }
  return event;
}
