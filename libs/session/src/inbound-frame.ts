/**
 * A client frame as the gateway's parser (gateway/frame-parser.ts) delivers it, validated once at
 * the edge: keys, JSON types, lengths, metadata keys and values, server-owned metadata dropped, and
 * a `stream_resume`'s metadata parsed into `resume`, the fields each type requires present (a user
 * message's content not blank). The session module trusts this shape and checks no field again;
 * what it still checks needs state (does the model or the file exist, who may leave a session).
 */
interface InboundFields {
  session_id?: string;
  content?: string;
  file_id?: string;
  file_url?: string;
  model_id?: string;
  metadata?: Record<string, string>;
  timestamp?: string;
}

/** What a `stream_resume` asks for: the frames of reply `messageId` after `lastSeq` (-1: all). */
export interface StreamResumeRequest {
  messageId: string;
  lastSeq: number;
}

type WithRequiredFields =
  | { type: 'user_message'; content: string }
  | { type: 'model_select'; model_id: string }
  | { type: 'file_upload' | 'voice_message'; file_id: string }
  | { type: 'stream_resume'; resume: StreamResumeRequest };

export type InboundFrame = InboundFields &
  (WithRequiredFields | { type: Exclude<InboundType, WithRequiredFields['type']> });

export const INBOUND_TYPES = [
  'user_message',
  'model_select',
  'help_request',
  'file_upload',
  'voice_message',
  'typing_indicator',
  'ping',
  'stop_generation',
  'stream_resume',
  'end_session',
  'admin_leave',
] as const;

export type InboundType = (typeof INBOUND_TYPES)[number];
