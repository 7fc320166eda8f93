import type { Sender, StoredMessageType } from '@chatbox/storage';

/**
 * What the session layer tells sockets, named by meaning (SPEC 4.4–4.9). The gateway renders each
 * kind as one wire frame (libs/gateway/src/frame-mapper.ts); nothing here knows the envelope.
 * Events are plain JSON data: the Redis adapters carry them between instances as they are.
 */
export type SessionEvent =
  | Greeting
  | SessionBound
  | ModelChanged
  | HelpRequestSent
  | Pong
  | Failure
  | MessageRelayed
  | Typing
  | ReplyStarted
  | ReplyStreamEvent
  | ReplyCatchUp
  | ReplyReplayed
  | ReplyStored
  | AdminJoined
  | AdminLeft
  | SessionEnded
  | SessionRolledOver
  | NothingToStop
  | DashboardEvent;

/**
 * When an event happened: an RFC 3339 instant (`Date#toISOString`), set once where it happens, so
 * that every socket, instance and replay shows the same time. A string, not a `Date`, because events
 * travel as JSON between instances.
 */
export type Instant = string;

/**
 * `now` when no date is given. Every streamed frame carries one, and formatting a date is a
 * measurable share of a frame's cost (issue 12): the text is made once per millisecond.
 */
export function instant(date?: Date): Instant {
  if (date) return date.toISOString();
  const now = Date.now();
  if (now !== lastInstant.at) lastInstant = { at: now, text: new Date(now).toISOString() };
  return lastInstant.text;
}
let lastInstant = { at: Number.NaN, text: '' };

export interface AdminIdentity {
  id: string;
  name: string;
}

/** A socket just connected: who it is, its session (bound, or the id its first message creates), the models. */
export interface Greeting {
  kind: 'greeting';
  userId: string;
  sessionId?: string;
  /** The session id is announced, not created yet: nothing is stored under it before a message. */
  newSession: boolean;
  models: { id: string; name: string }[];
  modelId: string;
  /** The admin assisting the bound session. */
  assistingAdmin?: AdminIdentity;
  at: Instant;
}

/** A socket this frame bound to a new session (its first message was a file) learns the session id. */
export interface SessionBound {
  kind: 'sessionBound';
  sessionId: string;
  at: Instant;
}

/** The session's model for the next replies. */
export interface ModelChanged {
  kind: 'modelChanged';
  sessionId: string;
  modelId: string;
  at: Instant;
}

/** The session asked for a human; admins were alerted. */
export interface HelpRequestSent {
  kind: 'helpRequestSent';
  sessionId: string;
  at: Instant;
}

export interface Pong {
  kind: 'pong';
  sessionId?: string;
  at: Instant;
}

/** A frame (or the reply it started) failed: for the socket that sent it only (SPEC 4.9). */
export interface Failure {
  kind: 'failure';
  sessionId?: string;
  code: string;
  /** Client-safe text: never an internal detail. */
  message: string;
  recoverable: boolean;
  retryAfterMs?: number;
  at: Instant;
}

/**
 * A stored message shown to the session's sockets: a user's or admin's text relayed to the other
 * sockets, a file or voice note (or its transcription), a file or speech from the AI.
 */
export interface MessageRelayed {
  kind: 'messageRelayed';
  sessionId: string;
  messageId: string;
  messageType: Exclude<StoredMessageType, 'ai_response'>;
  sender: Sender;
  content: string;
  fileId?: string;
  /** A link the sockets can open (signed), not the stored path. */
  fileUrl?: string;
  /** The model whose reply brought the file or speech. */
  modelId?: string;
  /** The stored message's meta (file details, transcription, the client's own keys). */
  meta?: Record<string, string>;
  /** The admin who wrote a text message into the session (shown instead of its meta). */
  admin?: AdminIdentity;
  at: Instant;
}

/** Someone on the other side of the session is typing (or stopped). */
export interface Typing {
  kind: 'typing';
  sessionId: string;
  typing: boolean;
  /** The assisting admin's name when the admin types; absent for the session's user. */
  adminName?: string;
  at: Instant;
}

export type ReplyStatus = 'complete' | 'stopped' | 'error' | 'interrupted';

/** An AI reply is being prepared (before its first text). */
export interface ReplyStarted {
  kind: 'replyStarted';
  sessionId: string;
  messageId: string;
  modelId: string;
  at: Instant;
}

/** A numbered frame of a reply (`seq` from 0): kept for `stream_resume` and fanned out by `seq`. */
export type ReplyStreamEvent = ReplyDelta | ReplyDone;

/** Text of a reply as it streams. */
export interface ReplyDelta {
  kind: 'replyDelta';
  sessionId: string;
  messageId: string;
  modelId: string;
  seq: number;
  text: string;
  at: Instant;
}

/** What a reply counted (SPEC 4.5 step 6). */
export interface ReplyUsage {
  tokens: number;
  promptTokens: number;
  completionTokens: number;
  responseTimeMs: number;
  firstTokenMs?: number;
}

/** How a reply ended. */
export interface ReplyEnding {
  status: ReplyStatus;
  /** Absent when another instance ended the reply for its gone streamer. */
  usage?: ReplyUsage;
  /** Why it stopped short when it was no error (`max_reply_size`). */
  reason?: string;
  /** The error that ended it, or that kept it from being stored. */
  errorCode?: string;
}

/** The end of a reply: exactly one per reply, after its last delta (SPEC 4.5). */
export interface ReplyDone {
  kind: 'replyDone';
  sessionId: string;
  messageId: string;
  /** Unknown only when another instance ended a reply it had heard nothing of. */
  modelId?: string;
  seq: number;
  ending: ReplyEnding;
  at: Instant;
}

/** A socket that binds mid-reply: the text so far in one piece, as of `seq` (SPEC 4.6). */
export interface ReplyCatchUp {
  kind: 'replyCatchUp';
  sessionId: string;
  messageId: string;
  modelId?: string;
  seq: number;
  text: string;
  at: Instant;
}

/** `stream_resume` of a reply that already ended, answered from its buffer: the whole reply once. */
export interface ReplyReplayed {
  kind: 'replyReplayed';
  sessionId: string;
  messageId: string;
  modelId?: string;
  text: string;
  ending: ReplyEnding;
  at: Instant;
}

/** `stream_resume` of a reply that already ended, answered from the database: the stored message once. */
export interface ReplyStored {
  kind: 'replyStored';
  sessionId: string;
  messageId: string;
  modelId?: string;
  text: string;
  /** The stored message's meta (status, tokens, timings). */
  meta: Record<string, string>;
  at: Instant;
}

/** A human took the session over (SPEC 4.8). */
export interface AdminJoined {
  kind: 'adminJoined';
  sessionId: string;
  admin: AdminIdentity;
  at: Instant;
}

/** The assisting admin left: the admin's own sockets are unbound from the session on delivery. */
export interface AdminLeft {
  kind: 'adminLeft';
  sessionId: string;
  admin: AdminIdentity;
  at: Instant;
}

/** The session ended; `elsewhere` when the user started another session (one active per user). */
export interface SessionEnded {
  kind: 'sessionEnded';
  sessionId: string;
  elsewhere: boolean;
  at: Instant;
}

/** The session reached its message cap: the socket's next message continues in a new session. */
export interface SessionRolledOver {
  kind: 'sessionRolledOver';
  sessionId: string;
  at: Instant;
}

/** `stop_generation` while no reply of the session streams. */
export interface NothingToStop {
  kind: 'nothingToStop';
  sessionId: string;
  at: Instant;
}

/** What admin dashboards (admin sockets bound to no session) hear (SPEC 4.8 [ext]). */
export type DashboardEvent = DashboardUpdate | DashboardAlert;

export type DashboardChange =
  'sessionStarted' | 'sessionEnded' | 'takeoverStarted' | 'takeoverEnded' | 'helpResolved';

/** A session changed in a way the dashboard's lists show. */
export interface DashboardUpdate {
  kind: 'dashboardUpdate';
  change: DashboardChange;
  sessionId: string;
  /** The session's user. */
  userId: string;
  /** The admin who took over, left or resolved. */
  admin?: AdminIdentity;
  at: Instant;
}

/** An alert of the notification module (help requested, operational alerts). */
export interface DashboardAlert {
  kind: 'dashboardAlert';
  sessionId?: string;
  /** One line for people. */
  summary: string;
  /** The alert's facts as the notification module words them (its `event` among them). */
  facts: Record<string, string>;
  at: Instant;
}
