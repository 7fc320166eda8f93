import type { DashboardChange, Instant, ReplyEnding, SessionEvent } from '@chatbox/session';

/**
 * A server frame in the envelope of SPEC 4.2: snake_case keys, string metadata, `timestamp`
 * RFC 3339 and `sender` always, empty optional keys omitted (docs/asyncapi.yaml `ServerEnvelope`).
 */
export interface ServerFrame {
  type: string;
  sender: 'user' | 'ai' | 'admin' | 'system';
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

/** The gateway's own notice to every socket when the server shuts down (SPEC 13). */
export interface ServerShutdown {
  kind: 'serverShutdown';
  sessionId?: string;
  at: Instant;
}

/** Everything a socket is sent: the session layer's events and the gateway's own. */
export type OutboundEvent = SessionEvent | ServerShutdown;

/** `metadata.reason` of each notice (SPEC 4.8). */
export const NOTICE_REASONS = {
  sessionEnded: 'session_ended',
  sessionEndedElsewhere: 'session_ended_elsewhere',
  sessionRolledOver: 'message_limit',
  nothingToStop: 'nothing_to_stop',
  serverShutdown: 'server_shutdown',
} as const;

/** `metadata.event` of each dashboard update (SPEC 4.8 [ext]). */
export const DASHBOARD_EVENTS: Readonly<Record<DashboardChange, string>> = {
  sessionStarted: 'session_started',
  sessionEnded: 'session_ended',
  takeoverStarted: 'takeover_started',
  takeoverEnded: 'takeover_ended',
  helpResolved: 'help_resolved',
};

const HELP_CONFIRMATION = 'Help request sent. An administrator will join your session shortly.';

type Fields = Omit<ServerFrame, 'type' | 'sender' | 'timestamp'>;

/** The envelope with the empty optional keys left out (`undefined`, `''`, `{}`). */
function frame(type: string, sender: ServerFrame['sender'], at: Instant, fields: Fields): ServerFrame {
  const built: ServerFrame = { type, sender, timestamp: at };
  for (const [key, value] of Object.entries(fields) as [keyof Fields, unknown][]) {
    if (value === undefined || value === '') continue;
    if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value as object).length === 0)
      continue;
    (built as unknown as Record<string, unknown>)[key] = value;
  }
  return built;
}

function notice(sessionId: string | undefined, at: Instant, content: string, reason: string): ServerFrame {
  return frame('notification', 'system', at, { session_id: sessionId, content, metadata: { reason } });
}

/** A reply's figures and how it ended early, as its done frame tells them (SPEC 4.5 step 6). */
function endingMetadata({ status, usage, reason, errorCode }: ReplyEnding): Record<string, string> {
  return {
    ...(usage
      ? {
          tokens: String(usage.tokens),
          prompt_tokens: String(usage.promptTokens),
          completion_tokens: String(usage.completionTokens),
          response_time_ms: String(usage.responseTimeMs),
          ...(usage.firstTokenMs !== undefined ? { first_token_ms: String(usage.firstTokenMs) } : {}),
        }
      : {}),
    ...(status === 'stopped' || status === 'interrupted' ? { stopped: 'true' } : {}),
    ...(status === 'interrupted' ? { status } : {}),
    ...(reason ? { reason } : {}),
    ...(errorCode ? { error: errorCode } : {}),
  };
}

/** The status a replayed reply shows: what its done frame says, else complete. */
function replayedStatus({ status, errorCode }: ReplyEnding): string {
  if (status === 'interrupted') return status;
  if (errorCode) return 'error';
  return status === 'stopped' ? 'stopped' : 'complete';
}

type Renderers = {
  [Kind in OutboundEvent['kind']]: (event: Extract<OutboundEvent, { kind: Kind }>) => ServerFrame;
};

/** One rendering per event kind (SPEC 4.4–4.9). */
const RENDERERS: Renderers = {
  greeting: (event) =>
    frame('connection_status', 'system', event.at, {
      user_id: event.userId,
      session_id: event.sessionId,
      content: 'Connected',
      models: event.models,
      model_id: event.modelId,
      metadata: event.newSession
        ? { new_session: 'true' }
        : event.assistingAdmin && {
            admin_name: event.assistingAdmin.name,
            admin_id: event.assistingAdmin.id,
          },
    }),
  sessionBound: (event) => frame('connection_status', 'system', event.at, { session_id: event.sessionId }),
  modelChanged: (event) =>
    frame('connection_status', 'system', event.at, {
      session_id: event.sessionId,
      content: `Model changed to ${event.modelId}`,
      model_id: event.modelId,
    }),
  helpRequestSent: (event) =>
    frame('connection_status', 'system', event.at, {
      session_id: event.sessionId,
      content: HELP_CONFIRMATION,
    }),
  pong: (event) => frame('pong', 'system', event.at, { session_id: event.sessionId }),
  failure: (event) =>
    frame('error', 'system', event.at, {
      session_id: event.sessionId,
      error: {
        code: event.code,
        message: event.message,
        recoverable: event.recoverable,
        ...(event.retryAfterMs !== undefined ? { retry_after: event.retryAfterMs } : {}),
      },
    }),
  messageRelayed: (event) =>
    frame(event.messageType, event.sender, event.at, {
      id: event.messageId,
      session_id: event.sessionId,
      content: event.content,
      file_id: event.fileId,
      file_url: event.fileUrl,
      model_id: event.modelId,
      metadata: event.admin ? { admin_name: event.admin.name, admin_id: event.admin.id } : event.meta,
    }),
  typing: (event) =>
    frame('typing_indicator', event.adminName === undefined ? 'user' : 'admin', event.at, {
      session_id: event.sessionId,
      metadata: {
        typing: String(event.typing),
        ...(event.adminName === undefined ? {} : { admin_name: event.adminName }),
      },
    }),
  replyStarted: (event) =>
    frame('loading', 'ai', event.at, {
      session_id: event.sessionId,
      model_id: event.modelId,
      metadata: { message_id: event.messageId },
    }),
  replyDelta: (event) =>
    frame('ai_response', 'ai', event.at, {
      id: event.messageId,
      session_id: event.sessionId,
      content: event.text,
      model_id: event.modelId,
      metadata: { streaming: 'true', done: 'false', message_id: event.messageId, seq: String(event.seq) },
    }),
  replyCatchUp: (event) =>
    frame('ai_response', 'ai', event.at, {
      id: event.messageId,
      session_id: event.sessionId,
      content: event.text,
      model_id: event.modelId,
      metadata: {
        streaming: 'true',
        done: 'false',
        catch_up: 'true',
        message_id: event.messageId,
        seq: String(event.seq),
      },
    }),
  replyDone: (event) =>
    frame('ai_response', 'ai', event.at, {
      id: event.messageId,
      session_id: event.sessionId,
      model_id: event.modelId,
      metadata: {
        streaming: 'true',
        done: 'true',
        message_id: event.messageId,
        seq: String(event.seq),
        ...endingMetadata(event.ending),
      },
    }),
  replyReplayed: (event) =>
    frame('ai_response', 'ai', event.at, {
      id: event.messageId,
      session_id: event.sessionId,
      model_id: event.modelId,
      content: event.text,
      metadata: {
        done: 'true',
        message_id: event.messageId,
        ...endingMetadata(event.ending),
        status: replayedStatus(event.ending),
        streaming: 'false',
      },
    }),
  replyStored: (event) =>
    frame('ai_response', 'ai', event.at, {
      id: event.messageId,
      session_id: event.sessionId,
      content: event.text,
      model_id: event.modelId,
      metadata: { ...event.meta, message_id: event.messageId, streaming: 'false', done: 'true' },
    }),
  adminJoined: (event) =>
    frame('admin_join', 'admin', event.at, {
      session_id: event.sessionId,
      content: `${event.admin.name} has joined the conversation`,
      metadata: { admin_id: event.admin.id, admin_name: event.admin.name },
    }),
  adminLeft: (event) =>
    frame('admin_leave', 'admin', event.at, {
      session_id: event.sessionId,
      content: `${event.admin.name} has left the conversation`,
      metadata: { admin_id: event.admin.id, admin_name: event.admin.name },
    }),
  sessionEnded: (event) =>
    frame('notification', 'system', event.at, {
      session_id: event.sessionId,
      content: 'This conversation has ended.',
      metadata: {
        reason: event.elsewhere ? NOTICE_REASONS.sessionEndedElsewhere : NOTICE_REASONS.sessionEnded,
        event: DASHBOARD_EVENTS.sessionEnded,
      },
    }),
  sessionRolledOver: (event) =>
    notice(
      event.sessionId,
      event.at,
      'This conversation reached its size limit and continues in a new session.',
      NOTICE_REASONS.sessionRolledOver,
    ),
  nothingToStop: (event) =>
    notice(event.sessionId, event.at, 'No reply is being generated.', NOTICE_REASONS.nothingToStop),
  serverShutdown: (event) =>
    notice(
      event.sessionId,
      event.at,
      'The server is restarting; reconnect in a moment.',
      NOTICE_REASONS.serverShutdown,
    ),
  dashboardUpdate: (event) =>
    frame('notification', 'system', event.at, {
      session_id: event.sessionId,
      metadata: {
        event: DASHBOARD_EVENTS[event.change],
        ...(event.admin ? { admin_id: event.admin.id, admin_name: event.admin.name } : {}),
        user_id: event.userId,
      },
    }),
  dashboardAlert: (event) =>
    frame('notification', 'system', event.at, {
      session_id: event.sessionId,
      content: event.summary,
      metadata: event.facts,
    }),
};

/** The one place where events become wire frames. */
export function renderFrame(event: OutboundEvent): ServerFrame {
  const render = RENDERERS[event.kind] as (event: OutboundEvent) => ServerFrame;
  return render(event);
}

/** Serialised once per event, however many sockets it goes to. */
const serialised = new WeakMap<OutboundEvent, string>();

/** The frame of `event` as the text a socket is sent. */
export function frameText(event: OutboundEvent): string {
  let text = serialised.get(event);
  if (text === undefined) {
    text = JSON.stringify(renderFrame(event));
    serialised.set(event, text);
  }
  return text;
}
