import { HelpState, SessionRecord, StoredMessage } from '@chatbox/storage';

/** JSON shapes of SPEC 5 for sessions and messages, shared by the user and admin REST APIs. */
export interface SessionRow {
  id: string;
  session_id: string;
  user_id: string;
  name: string;
  model_id: string;
  last_activity: string;
  message_count: number;
  admin_assisted: boolean;
  assisting_admin_name?: string;
  help_requested: boolean;
  start_time: string;
  end_time?: string;
  is_active: boolean;
  duration: number;
  total_tokens: number;
  max_response_time: number;
  avg_response_time: number;
  share_token?: string;
  help_state?: HelpState;
}

export interface MessageView {
  id: string;
  type: string;
  content: string;
  timestamp: string;
  sender: string;
  file_id?: string;
  file_url?: string;
  metadata?: Record<string, string>;
}

export interface SessionDetail {
  session_id: string;
  name: string;
  model_id: string;
  messages: MessageView[];
  is_active: boolean;
  admin_assisted: boolean;
  assisting_admin_name?: string;
}

/** Only while an admin assists: after the takeover ends the name would tell of nobody (SPEC 5). */
function assistingAdmin(session: SessionRecord): { assisting_admin_name?: string } {
  return session.assistingSince && session.assistingAdminName
    ? { assisting_admin_name: session.assistingAdminName }
    : {};
}

export function toSessionRow(
  session: SessionRecord,
  options: { includeShareToken: boolean; now?: Date },
): SessionRow {
  const now = options.now ?? new Date();
  const duration =
    session.durationSec ??
    Math.max(0, Math.round(((session.endedAt ?? now).getTime() - session.startedAt.getTime()) / 1000));
  return {
    id: session.id,
    session_id: session.id,
    user_id: session.userId,
    name: session.name ?? '',
    model_id: session.modelId ?? '',
    last_activity: session.lastActivity.toISOString(),
    message_count: session.messageCount,
    admin_assisted: session.adminAssisted || session.assistingAdminId !== undefined,
    ...assistingAdmin(session),
    help_requested: session.helpRequested,
    start_time: session.startedAt.toISOString(),
    ...(session.endedAt ? { end_time: session.endedAt.toISOString() } : {}),
    is_active: session.endedAt === undefined,
    duration,
    total_tokens: session.totalTokens,
    max_response_time: session.maxResponseTimeMs,
    avg_response_time: session.avgResponseTimeMs,
    ...(options.includeShareToken && session.shareToken ? { share_token: session.shareToken } : {}),
    ...(session.helpState ? { help_state: session.helpState } : {}),
  };
}

/** `signFileUrl` re-signs file links on every read (files module); identity until it exists. */
export function toMessageView(message: StoredMessage, signFileUrl?: (fileId: string) => string): MessageView {
  const fileUrl = message.fileId && signFileUrl ? signFileUrl(message.fileId) : message.fileUrl;
  return {
    id: message.id,
    type: message.type,
    content: message.content,
    timestamp: message.timestamp.toISOString(),
    sender: message.sender,
    ...(message.fileId ? { file_id: message.fileId } : {}),
    ...(fileUrl ? { file_url: fileUrl } : {}),
    ...(message.meta && Object.keys(message.meta).length > 0 ? { metadata: message.meta } : {}),
  };
}

export function toSessionDetail(
  session: SessionRecord,
  messages: StoredMessage[],
  signFileUrl?: (fileId: string) => string,
): SessionDetail {
  return {
    session_id: session.id,
    name: session.name ?? '',
    model_id: session.modelId ?? '',
    messages: messages.map((message) => toMessageView(message, signFileUrl)),
    is_active: session.endedAt === undefined,
    admin_assisted: session.adminAssisted || session.assistingAdminId !== undefined,
    ...assistingAdmin(session),
  };
}

export interface SharedSessionView {
  session_id: string;
  name: string;
  messages: MessageView[];
}

/** The public read-only view of a shared session: no user or admin identity in message metadata. */
export function toSharedView(
  session: SessionRecord,
  messages: StoredMessage[],
  signFileUrl: (fileId: string) => string,
): SharedSessionView {
  return {
    session_id: session.id,
    name: session.name ?? '',
    messages: messages.map((message) => {
      const view = toMessageView(message, signFileUrl);
      if (view.metadata) {
        const { admin_id: _adminId, user_id: _userId, ...rest } = view.metadata;
        if (Object.keys(rest).length > 0) view.metadata = rest;
        else delete view.metadata;
      }
      return view;
    }),
  };
}
