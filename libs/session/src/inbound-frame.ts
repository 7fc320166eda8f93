/** A validated client frame (the gateway parses and validates; the session module trusts the shape). */
export interface InboundFrame {
  type: InboundType;
  session_id?: string;
  content?: string;
  file_id?: string;
  file_url?: string;
  model_id?: string;
  metadata?: Record<string, string>;
  timestamp?: string;
}

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
