/** Domain view of a stored session: what services see. Storage maps to and from `SessionDocument`. */

export type Sender = 'user' | 'ai' | 'admin' | 'system';
export type StoredMessageType = 'user_message' | 'ai_response' | 'file_upload' | 'voice_message';

export interface StoredMessage {
  id: string;
  /** Order within the session (SPEC 8 `seq`); assigned when the message is created, not when written. */
  seq: number;
  type: StoredMessageType;
  content: string;
  timestamp: Date;
  sender: Sender;
  fileId?: string;
  fileUrl?: string;
  meta?: Record<string, string>;
}

export interface Assist {
  adminId: string;
  adminName: string;
  start: Date;
  end: Date;
}

export interface SessionRecord {
  id: string;
  userId: string;
  name?: string;
  modelId?: string;
  startedAt: Date;
  endedAt?: Date;
  durationSec?: number;
  lastActivity: Date;
  adminAssisted: boolean;
  assistingAdminId?: string;
  assistingAdminName?: string;
  assistingSince?: Date;
  /** When an assist whose admin has gone is released (stored, so any instance's sweep can do it). */
  assistDeadline?: Date;
  helpRequested: boolean;
  helpRequestedAt?: Date;
  /** Absent when nobody asked for or gave human help. */
  helpState?: HelpState;
  /** The owner deleted it from their list ([ext]); admins still see it. */
  hiddenAt?: Date;
  totalTokens: number;
  promptTokens: number;
  completionTokens: number;
  maxResponseTimeMs: number;
  avgResponseTimeMs: number;
  /** Sum and count behind the average ([ext]; absent on legacy documents). */
  responseTimeSumMs?: number;
  responseCount?: number;
  messageCount: number;
  shareToken?: string;
  shareExpiresAt?: Date;
  assists: Assist[];
  difyConversationId?: string;
}

/** The human-help queue of a session (SPEC 5, 8): waiting, being helped, done. */
export type HelpState = 'open' | 'assisted' | 'resolved';
export const HELP_STATES: readonly HelpState[] = ['open', 'assisted', 'resolved'];

/** Counters a stored message adds to its session (written coalesced, see SessionWriteLanes). */
export interface MessageCounters {
  promptTokens?: number;
  completionTokens?: number;
  responseTimeMs?: number;
}

export type SessionSortField =
  | 'start_time'
  | 'end_time'
  | 'last_activity'
  | 'duration'
  | 'message_count'
  | 'total_tokens'
  | 'user_id'
  | 'avg_response_time'
  | 'max_response_time';

export interface SessionListFilter {
  userId?: string;
  status?: 'active' | 'ended';
  adminAssisted?: boolean;
  helpRequested?: boolean;
  helpState?: HelpState;
  /** Case-insensitive substring of the user id (the dashboard's search box). */
  userIdContains?: string;
  /** Leave out the sessions their owner deleted (the owner's own list). */
  visibleToOwner?: boolean;
  startFrom?: Date;
  startTo?: Date;
}

export interface SessionListQuery {
  filter: SessionListFilter;
  sortBy: SessionSortField;
  sortOrder: 'asc' | 'desc';
  offset: number;
  limit: number;
}

/** A streaming reply's text so far (SPEC 8 checkpoint), kept until the reply is stored whole. */
export interface ReplyCheckpoint {
  sessionId: string;
  message: StoredMessage;
  userId: string;
  /** The instance streaming it: another instance recovers it only when this one is gone. */
  owner: string;
  updatedAt: Date;
}
