import { Logger, OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import { ChatEvent, chatEvent } from '../chat-event';
import type { ClientConnection } from '../ports/client-connection';
import { ConnectionRegistry } from '../ports/connection-registry';
import {
  InProcessSessionBroadcaster,
  SessionBroadcaster,
  deliverReplyFrameOnce,
} from '../ports/session-broadcaster';
import { RedisLink } from './redis-link';

/** What travels on the channel: a session event, a dashboard event or a frame of an AI reply. */
type Envelope =
  | { origin: string; kind: 'session'; sessionId: string; event: ChatEvent; exceptConnectionId?: string }
  | { origin: string; kind: 'dashboard'; event: ChatEvent }
  | { origin: string; kind: 'reply'; sessionId: string; messageId: string; seq: number; event: ChatEvent }
  | { origin: string; kind: 'stop'; sessionId: string };

/** Frames kept per reply for `stream_resume` (trimmed approximately beyond this). */
const REPLY_STREAM_MAXLEN = 10_000;
/** A reply buffer outlives its last frame by this long, so a crashed instance leaves nothing behind. */
const REPLY_STREAM_TTL_MS = 10 * 60_000;
/** Remote replies remembered for catch-up frames at most (more only after crashed streamers). */
const MAX_REMOTE_REPLIES = 1_000;
/** Start-up does not wait longer than this for the subscription (Redis down: local delivery only). */
const SUBSCRIBE_WAIT_MS = 2_000;

/** What this instance heard of a reply streaming elsewhere: enough for a catch-up frame. */
interface RemoteReply {
  sessionId: string;
  text: string;
  nextSeq: number;
  /** False when this instance joined mid-reply (the text is incomplete: no catch-up from it). */
  whole: boolean;
}

interface ResumeBuffer {
  messageId: string;
  frames: { seq: number; event: ChatEvent }[];
}

/**
 * Fan-out through Redis pub/sub (SPEC 10): one channel, `<prefix>session`. The publishing instance
 * delivers to its own sockets at once (same order as in-process, and still working while Redis is
 * down) and ignores its own publications; every other instance delivers to its local sockets. AI
 * reply frames also go to a Redis Stream per reply so another instance can serve `stream_resume`.
 */
export class RedisSessionBroadcaster extends SessionBroadcaster implements OnModuleInit {
  private readonly logger = new Logger(RedisSessionBroadcaster.name);
  private readonly local: InProcessSessionBroadcaster;
  private readonly channel: string;
  /** Sockets in the middle of a remote resume: their live frames wait until the replay is sent. */
  private readonly resuming = new Map<ClientConnection, ResumeBuffer>();
  /** Replies streaming on other instances, by message id (dropped at their done frame). */
  private readonly remoteReplies = new Map<string, RemoteReply>();
  private stopLocalReply?: (sessionId: string) => void;
  private remoteChange?: (sessionId: string) => void;

  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly link: RedisLink,
  ) {
    super();
    this.local = new InProcessSessionBroadcaster(registry);
    this.channel = `${link.prefix}session`;
  }

  private get redis(): Redis {
    return this.link.commands as Redis;
  }

  async onModuleInit(): Promise<void> {
    const subscriber = this.link.subscriber as Redis;
    subscriber.on('message', (channel: string, raw: string) => {
      if (channel === this.channel) this.receive(raw);
    });
    const subscribed = subscriber.subscribe(this.channel).then(
      () => true,
      (error: unknown) => {
        this.logger.warn(`Redis subscription failed (${(error as Error).message})`);
        return false;
      },
    );
    const timeout = new Promise<boolean>((resolve) =>
      setTimeout(() => resolve(false), SUBSCRIBE_WAIT_MS).unref(),
    );
    if (!(await Promise.race([subscribed, timeout])))
      this.logger.warn('Not subscribed to Redis yet: other instances’ events arrive once it answers');
  }

  toSession(sessionId: string, event: ChatEvent, exceptConnectionId?: string): void {
    this.local.toSession(sessionId, event, exceptConnectionId);
    this.publish({ origin: this.link.instanceId, kind: 'session', sessionId, event, exceptConnectionId });
  }

  toDashboards(event: ChatEvent): void {
    this.local.toDashboards(event);
    this.publish({ origin: this.link.instanceId, kind: 'dashboard', event });
  }

  override replyFrame(sessionId: string, messageId: string, seq: number, frame: ChatEvent): void {
    const envelope: Envelope = {
      origin: this.link.instanceId,
      kind: 'reply',
      sessionId,
      messageId,
      seq,
      event: frame,
    };
    if (this.link.down) return;
    const key = this.streamKey(sessionId, messageId);
    // One connection, in order: the frame is in the stream before any instance hears of it.
    this.redis
      .multi()
      .xadd(key, 'MAXLEN', '~', REPLY_STREAM_MAXLEN, '*', 'f', JSON.stringify(frame))
      .pexpire(key, REPLY_STREAM_TTL_MS)
      .publish(this.channel, JSON.stringify(envelope))
      .exec()
      .then(
        () => this.link.reportSuccess(),
        (error: unknown) => this.link.reportFailure('reply fan-out', error),
      );
  }

  /** Published in any case; true when this instance has heard frames of a reply of the session. */
  override requestStop(sessionId: string): boolean {
    this.publish({ origin: this.link.instanceId, kind: 'stop', sessionId });
    return [...this.remoteReplies.values()].some((reply) => reply.sessionId === sessionId);
  }

  override onRemoteChange(changed: (sessionId: string) => void): void {
    this.remoteChange = changed;
  }

  override onStopRequest(stopLocalReply: (sessionId: string) => void): void {
    this.stopLocalReply = stopLocalReply;
  }

  override async resumeRemote(
    connection: ClientConnection,
    sessionId: string,
    messageId: string,
    lastSeq: number,
  ): Promise<boolean> {
    if (this.link.down) return false;
    // Registered before the read: a live frame either is in the read or arrives into the buffer.
    const buffer: ResumeBuffer = { messageId, frames: [] };
    this.resuming.set(connection, buffer);
    try {
      const entries = await this.redis.xrange(this.streamKey(sessionId, messageId), '-', '+');
      const frames = entries.map(([, fields]) => JSON.parse(fields[1]) as ChatEvent);
      // Nothing buffered: the stored message answers (SPEC 4.6).
      if (frames.length === 0) return false;
      const done = frames.find((frame) => frame.metadata?.done === 'true');
      // Over: the complete message once, from the buffer (its write to the database may still be on
      // its way: the done frame does not wait for it).
      if (done) {
        connection.send(completedReply(frames, done));
        return true;
      }
      const delivered = Math.max(lastSeq, connection.deliveredSeq.get(messageId) ?? -1);
      connection.deliveredSeq.set(messageId, delivered);
      for (const frame of frames)
        deliverReplyFrameOnce(connection, messageId, Number(frame.metadata?.seq), frame);
      for (const { seq, event } of buffer.frames) deliverReplyFrameOnce(connection, messageId, seq, event);
      return true;
    } catch (error) {
      this.link.reportFailure('stream_resume', error);
      return false;
    } finally {
      if (this.resuming.get(connection) === buffer) this.resuming.delete(connection);
    }
  }

  private streamKey(sessionId: string, messageId: string): string {
    return `${this.link.prefix}reply:${sessionId}:${messageId}`;
  }

  private publish(envelope: Envelope): void {
    if (this.link.down) return;
    this.redis.publish(this.channel, JSON.stringify(envelope)).then(
      () => this.link.reportSuccess(),
      (error: unknown) => this.link.reportFailure('session fan-out', error),
    );
  }

  private receive(raw: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(raw) as Envelope;
    } catch {
      return;
    }
    if (envelope.origin === this.link.instanceId) return;
    switch (envelope.kind) {
      case 'session':
        this.remoteChange?.(envelope.sessionId);
        this.local.toSession(envelope.sessionId, envelope.event, envelope.exceptConnectionId);
        return;
      case 'dashboard':
        this.local.toDashboards(envelope.event);
        return;
      case 'reply':
        if (envelope.event.metadata?.done === 'true') this.remoteChange?.(envelope.sessionId);
        this.receiveReplyFrame(envelope);
        return;
      case 'stop':
        this.stopLocalReply?.(envelope.sessionId);
        return;
    }
  }

  /**
   * A frame of a reply streamed by another instance, to the local sockets with the `seq` dedup. A
   * socket that bound mid-reply (it has had nothing of it) first gets the text so far as one
   * catch-up frame, as a socket binding on the streaming instance would (SPEC 4.6).
   */
  private receiveReplyFrame(envelope: Extract<Envelope, { kind: 'reply' }>): void {
    const { sessionId, messageId, seq, event } = envelope;
    const reply = this.remoteReplies.get(messageId) ?? {
      sessionId,
      text: '',
      nextSeq: seq,
      whole: seq === 0,
    };
    for (const connection of this.registry.connectionsOf(sessionId)) {
      const buffer = this.resuming.get(connection);
      if (buffer?.messageId === messageId) {
        buffer.frames.push(envelope);
        continue;
      }
      if (seq > 0 && reply.whole && reply.nextSeq === seq && !connection.deliveredSeq.has(messageId))
        deliverReplyFrameOnce(connection, messageId, seq - 1, catchUpFrame(event, reply.text, seq - 1));
      deliverReplyFrameOnce(connection, messageId, seq, event);
    }
    if (event.metadata?.done === 'true') {
      this.remoteReplies.delete(messageId);
      return;
    }
    if (reply.nextSeq !== seq) reply.whole = false;
    reply.text += event.content ?? '';
    reply.nextSeq = seq + 1;
    this.remoteReplies.set(messageId, reply);
    // A crashed streamer never sends its done frame: forget the oldest beyond a bound.
    if (this.remoteReplies.size > MAX_REMOTE_REPLIES)
      this.remoteReplies.delete(this.remoteReplies.keys().next().value as string);
  }
}

function catchUpFrame(frame: ChatEvent, text: string, seq: number): ChatEvent {
  return chatEvent('ai_response', 'ai', {
    id: frame.id,
    session_id: frame.session_id,
    content: text,
    model_id: frame.model_id,
    metadata: {
      streaming: 'true',
      done: 'false',
      catch_up: 'true',
      message_id: frame.metadata?.message_id ?? '',
      seq: String(seq),
    },
  });
}

/** A finished reply as one non-streaming message (the shape `stream_resume` answers from storage). */
function completedReply(frames: ChatEvent[], done: ChatEvent): ChatEvent {
  const { seq: _seq, streaming: _streaming, ...metadata } = done.metadata ?? {};
  const status = metadata.error ? 'error' : metadata.stopped === 'true' ? 'stopped' : 'complete';
  return chatEvent('ai_response', 'ai', {
    id: done.id,
    session_id: done.session_id,
    model_id: done.model_id,
    content: frames
      .filter((frame) => frame.metadata?.done !== 'true')
      .map((frame) => frame.content ?? '')
      .join(''),
    metadata: { ...metadata, status, streaming: 'false', done: 'true' },
  });
}
