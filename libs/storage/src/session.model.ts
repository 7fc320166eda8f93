/** Domain view of a stored session: what services see. Storage maps to and from `SessionDocument`. */

export type Sender = 'user' | 'ai' | 'admin' | 'system';
export type StoredMessageType = 'user_message' | 'ai_response' | 'file_upload' | 'voice_message';

export interface StoredMessage {
  id: string;
  type: StoredMessageType;
  content: string;
  timestamp: Date;
  sender: Sender;
  fileId?: string;
  fileUrl?: string;
  meta?: Record<string, string>;
}

/** The human-help queue of a session (SPEC 5, 8): waiting, being helped, done. */
export type HelpState = 'open' | 'assisted' | 'resolved';
export const HELP_STATES: readonly HelpState[] = ['open', 'assisted', 'resolved'];

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
  messages: StoredMessage[];
  startedAt: Date;
  endedAt?: Date;
  durationSec?: number;
  lastActivity: Date;
  adminAssisted: boolean;
  assistingAdminId?: string;
  assistingAdminName?: string;
  assistingSince?: Date;
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

/** Counters added together with a stored message (one `$inc`/`$max` in the same write). */
export interface MessageCounters {
  promptTokens?: number;
  completionTokens?: number;
  responseTimeMs?: number;
}

export type PushResult = 'added' | 'duplicate' | 'missing';

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
  /** Leave the embedded messages out (list views need only counters). */
  withoutMessages?: boolean;
}

/** Fields services may set directly. */
export interface SessionFieldUpdate {
  modelId?: string;
  helpRequested?: boolean;
  helpRequestedAt?: Date;
  helpState?: HelpState;
  adminAssisted?: boolean;
  assistingAdminId?: string;
  assistingAdminName?: string;
  assistingSince?: Date;
  shareToken?: string;
  shareExpiresAt?: Date;
  difyConversationId?: string;
  lastActivity?: Date;
}
