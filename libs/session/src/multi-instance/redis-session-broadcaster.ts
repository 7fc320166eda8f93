import { Logger, OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import { ChatboxEvents } from '@chatbox/common';
import type { ClientConnection } from '../ports/client-connection';
import { ConnectionRegistry } from '../ports/connection-registry';
import {
  InProcessSessionBroadcaster,
  LiveReply,
  OrphanedReply,
  SessionBroadcaster,
  deliverReplyFrameOnce,
} from '../ports/session-broadcaster';
import {
  DashboardEvent,
  instant,
  ReplyCatchUp,
  ReplyDone,
  ReplyReplayed,
  ReplyStreamEvent,
  SessionEvent,
} from '../session-events';
import { InstanceLiveness } from './instance-liveness';
import { RedisLink } from './redis-link';
import { EndOutcome, inSeqOrder, isWhole, ReplyEnvelope, ReplyStreams, textOf } from './reply-streams';

/** What travels on the channel: a session event, a dashboard event or a frame of an AI reply. */
type Envelope =
  | { origin: string; kind: 'session'; sessionId: string; event: SessionEvent; exceptConnectionId?: string }
  | { origin: string; kind: 'dashboard'; event: DashboardEvent }
  | ReplyEnvelope
  | { origin: string; kind: 'stop'; sessionId: string };

/** Remote replies remembered for catch-up frames at most (more only after crashed streamers). */
const MAX_REMOTE_REPLIES = 1_000;
/** Replies recently ended, whose late frames (from an instance taken for gone) are dropped. */
const MAX_ENDED_REPLIES = 1_000;
/** Start-up does not wait longer than this for the subscription (Redis down: local delivery only). */
const SUBSCRIBE_WAIT_MS = 2_000;

/** What this instance heard of a reply streaming elsewhere. */
interface RemoteReply {
  sessionId: string;
  /** The instance streaming it. */
  origin: string;
  /** When a frame of it last arrived (or it was last checked). */
  heardAt: number;
  /** The text of frames 0 … nextSeq-1 (exact when `whole`). */
  text: string;
  nextSeq: number;
  /** False when a frame was missed (the text is incomplete: no catch-up from it until repaired). */
  whole: boolean;
  /** Frames held back while the missing ones are fetched from the reply's buffer. */
  held?: ReplyStreamEvent[];
  /** Fetches that did not find the missing frames yet (their instance writes them when Redis is back). */
  repairs: number;
}

interface ResumeBuffer {
  messageId: string;
  frames: ReplyStreamEvent[];
}

/**
 * Fan-out through Redis pub/sub (SPEC 10): one channel, `<prefix>events`, carrying session events
 * as they are (each instance's gateway renders them for its own sockets). The publishing instance
 * delivers to its own sockets at once (same order as in-process, and still working while Redis is
 * down) and ignores its own publications; every other instance delivers to its local sockets. AI
 * reply frames also go to a buffer per reply (`ReplyStreams`) so another instance can serve
 * `stream_resume`, fill gaps and end the reply if its instance dies (issue 14):
 *
 * - **No silent gaps.** A frame whose `seq` is beyond the next expected one is held back while the
 *   missing frames are read from the buffer; they go out first. After a lost subscription, every
 *   reply heard of is checked against its buffer the same way.
 * - **Orphans end.** Replies of an instance whose liveness key expired are ended by the first
 *   instance to notice (heartbeat, or a `stream_resume` for it): stored as interrupted with the text
 *   of the buffer, a done frame to every socket of the session, its lock released.
 */
export class RedisSessionBroadcaster extends SessionBroadcaster implements OnModuleInit {
  private readonly logger = new Logger(RedisSessionBroadcaster.name);
  private readonly local: InProcessSessionBroadcaster;
  private readonly channel: string;
  private readonly streams: ReplyStreams;
  /** Sockets in the middle of a remote resume: their live frames wait until the replay is sent. */
  private readonly resuming = new Map<ClientConnection, ResumeBuffer>();
  /** Replies streaming on other instances, by message id (dropped at their done frame). */
  private readonly remoteReplies = new Map<string, RemoteReply>();
  private readonly ended = new Set<string>();
  private stopLocalReply?: (sessionId: string) => void;
  private remoteChange?: (sessionId: string) => void;
  private endedElsewhere?: (sessionId: string, messageId: string) => void;

  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly link: RedisLink,
    private readonly liveness: InstanceLiveness,
    private readonly events: ChatboxEvents,
  ) {
    super();
    this.local = new InProcessSessionBroadcaster(registry);
    this.channel = `${link.prefix}events`;
    this.streams = new ReplyStreams(link, this.channel, ({ sessionId, messageId }) =>
      this.endedElsewhere?.(sessionId, messageId),
    );
    liveness.onInstanceGone((instanceId) => this.endRepliesOf(instanceId));
    liveness.afterBeat(() => {
      if (this.streams.pending) this.streams.writeAll();
      if (liveness.canJudge) void this.checkSilentReplies();
    });
    link.onSubscriberBack(() => this.repairAll());
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

  toSession(sessionId: string, event: SessionEvent, exceptConnectionId?: string): void {
    this.local.toSession(sessionId, event, exceptConnectionId);
    this.publish({ origin: this.link.instanceId, kind: 'session', sessionId, event, exceptConnectionId });
  }

  toDashboards(event: DashboardEvent): void {
    this.local.toDashboards(event);
    this.publish({ origin: this.link.instanceId, kind: 'dashboard', event });
  }

  override replyStarted(reply: LiveReply): void {
    this.streams.started(reply);
  }

  override replyFrame(event: ReplyStreamEvent): void {
    this.streams.frame(event);
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

  override onReplyEndedElsewhere(ended: (sessionId: string, messageId: string) => void): void {
    this.endedElsewhere = ended;
  }

  override async endOrphanedReply(orphan: OrphanedReply): Promise<void> {
    await this.endOrphan(orphan.sessionId, orphan.messageId, orphan.owner, orphan.checkpoint);
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
      let read = await this.streams.read(sessionId, messageId);
      // Nothing buffered: the stored message answers (SPEC 4.6).
      if (read.frames.length === 0) return false;
      // Its instance is gone: the reply is ended now (stored as interrupted, done frame to every socket).
      if (!read.done && read.owner && (await this.liveness.isGone(read.owner))) {
        await this.endOrphan(sessionId, messageId, read.owner);
        read = await this.streams.read(sessionId, messageId);
      }
      // Over: the complete message once, from the buffer (its write to the database may still be on
      // its way: the done frame does not wait for it).
      if (read.done) {
        connection.send(replayed(read.frames, read.done));
        return true;
      }
      if (!this.remoteReplies.has(messageId) && read.whole)
        this.remember(messageId, {
          sessionId,
          origin: read.owner ?? '',
          heardAt: Date.now(),
          text: read.text,
          nextSeq: read.frames.length,
          whole: true,
          repairs: 0,
        });
      const delivered = Math.max(lastSeq, connection.deliveredSeq.get(messageId) ?? -1);
      connection.deliveredSeq.set(messageId, delivered);
      for (const frame of [...read.frames, ...buffer.frames]) deliverReplyFrameOnce(connection, frame);
      return true;
    } catch (error) {
      this.link.reportFailure('stream_resume', error);
      return false;
    } finally {
      if (this.resuming.get(connection) === buffer) this.resuming.delete(connection);
    }
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
        if (envelope.event.kind === 'replyDone') this.remoteChange?.(envelope.event.sessionId);
        this.receiveReplyFrame(envelope);
        return;
      case 'stop':
        this.stopLocalReply?.(envelope.sessionId);
        return;
    }
  }

  /** A frame of a reply streamed by another instance (or this instance's end of an orphaned one). */
  private receiveReplyFrame({ origin, event }: ReplyEnvelope): void {
    const { sessionId, messageId, seq } = event;
    if (this.streams.isLocal(messageId)) {
      // Only an instance that took this one for gone publishes for a reply streamed here: its done
      // frame ends the reply (the local sockets get it unless they are past it already).
      if (event.kind === 'replyDone') {
        for (const connection of this.registry.connectionsOf(sessionId))
          deliverReplyFrameOnce(connection, event);
        this.endedElsewhere?.(sessionId, messageId);
      }
      return;
    }
    if (this.ended.has(messageId)) return;
    let reply = this.remoteReplies.get(messageId);
    if (!reply) {
      reply = {
        sessionId,
        origin,
        heardAt: 0,
        text: '',
        nextSeq: 0,
        whole: true,
        repairs: 0,
      };
      this.remember(messageId, reply);
    }
    reply.heardAt = Date.now();
    if (reply.held) {
      reply.held.push(event);
      return;
    }
    const missed = seq > reply.nextSeq || !reply.whole;
    if (missed && this.registry.connectionsOf(sessionId).length > 0) {
      reply.held = [event];
      void this.repair(messageId, reply);
      return;
    }
    this.apply(reply, event);
  }

  /**
   * Delivers a frame to the local sockets with the `seq` dedup. A socket that bound mid-reply (it
   * has had nothing of it) first gets the text so far as one catch-up frame, as a socket binding on
   * the streaming instance would (SPEC 4.6).
   */
  private apply(reply: RemoteReply, event: ReplyStreamEvent): void {
    const { messageId, seq } = event;
    for (const connection of this.registry.connectionsOf(reply.sessionId)) {
      const buffer = this.resuming.get(connection);
      if (buffer?.messageId === messageId) {
        buffer.frames.push(event);
        continue;
      }
      if (seq > 0 && reply.whole && reply.nextSeq === seq && !connection.deliveredSeq.has(messageId))
        deliverReplyFrameOnce(connection, catchUp(event, reply.text, seq - 1));
      deliverReplyFrameOnce(connection, event);
    }
    if (event.kind === 'replyDone') {
      this.finished(messageId);
      return;
    }
    if (seq < reply.nextSeq) return;
    if (seq > reply.nextSeq) reply.whole = false;
    reply.text += event.text;
    reply.nextSeq = seq + 1;
  }

  /**
   * Fetches the frames this instance missed from the reply's buffer and delivers them before the
   * held ones. When the buffer does not have them yet (their instance writes it again once Redis is
   * back), it looks again every heartbeat for one liveness TTL; after that the held frames go out
   * with the gap (logged): the frames are gone for good.
   */
  private async repair(messageId: string, reply: RemoteReply): Promise<void> {
    const held = reply.held ?? [];
    let buffered: ReplyStreamEvent[] = [];
    try {
      buffered = (await this.streams.read(reply.sessionId, messageId)).frames;
      this.link.reportSuccess();
    } catch (error) {
      this.link.reportFailure('reply repair', error);
    }
    const bySeq = new Map<number, ReplyStreamEvent>();
    for (const frame of [...buffered, ...held]) bySeq.set(frame.seq, frame);
    const frames = inSeqOrder(bySeq);
    if (isWhole(frames) && frames.length >= reply.nextSeq) {
      const heldSeqs = new Set(held.map((event) => event.seq));
      const recovered = frames.filter(
        (frame) => frame.seq >= reply.nextSeq && !heldSeqs.has(frame.seq),
      ).length;
      reply.held = undefined;
      reply.repairs = 0;
      this.deliverHistory(messageId, reply.sessionId, frames);
      reply.text = textOf(frames);
      reply.nextSeq = frames.length;
      reply.whole = true;
      if (frames.at(-1)?.kind === 'replyDone') this.finished(messageId);
      if (recovered > 0) {
        this.events.emit({ type: 'reply.frames_recovered', count: recovered });
        this.logger.log(
          { sessionId: reply.sessionId, messageId, frames: recovered },
          'missed reply frames fetched from the reply buffer',
        );
      }
      return;
    }
    if (held.length === 0) {
      // A check after a lost subscription that found nothing new.
      reply.held = undefined;
      return;
    }
    if (reply.repairs++ * this.liveness.intervalMs < this.liveness.ttlMs) {
      setTimeout(() => void this.repair(messageId, reply), this.liveness.intervalMs).unref();
      return;
    }
    this.logger.warn(
      { sessionId: reply.sessionId, messageId, from: reply.nextSeq, to: held[0].seq },
      'reply frames lost (Redis lost them and their instance did not write them again)',
    );
    reply.held = undefined;
    reply.repairs = 0;
    for (const event of held) this.apply(reply, event);
  }

  /** Every frame of the reply so far, to each local socket from where it is. */
  private deliverHistory(messageId: string, sessionId: string, frames: ReplyStreamEvent[]): void {
    const body = frames.filter((frame) => frame.kind !== 'replyDone');
    for (const connection of this.registry.connectionsOf(sessionId)) {
      const buffer = this.resuming.get(connection);
      if (buffer?.messageId === messageId) {
        buffer.frames.push(...frames);
        continue;
      }
      if (!connection.deliveredSeq.has(messageId) && body.length > 1) {
        const lastSeq = body.length - 1;
        deliverReplyFrameOnce(connection, catchUp(body[lastSeq], textOf(body), lastSeq));
      }
      for (const frame of frames) deliverReplyFrameOnce(connection, frame);
    }
  }

  /** The subscription is back: every reply heard of is checked for frames missed meanwhile. */
  private async repairAll(): Promise<void> {
    // Confirmed before reading: a frame published from now on arrives live, an earlier one is buffered.
    await (this.link.subscriber as Redis).subscribe(this.channel);
    for (const [messageId, reply] of this.remoteReplies) {
      if (reply.held || this.registry.connectionsOf(reply.sessionId).length === 0) continue;
      reply.held = [];
      void this.repair(messageId, reply);
    }
  }

  /**
   * Replies with sockets here that have been silent for a liveness TTL: ended if their instance is
   * gone (also when Redis lost the list of what it streamed), else checked against their buffer (a
   * lost subscription may have swallowed their last frames, the done frame included).
   */
  private async checkSilentReplies(now = Date.now()): Promise<void> {
    for (const [messageId, reply] of this.remoteReplies) {
      if (reply.held || now - reply.heardAt < this.liveness.ttlMs) continue;
      if (this.registry.connectionsOf(reply.sessionId).length === 0) continue;
      reply.heardAt = now;
      try {
        if (await this.liveness.isGone(reply.origin)) {
          await this.endOrphan(reply.sessionId, messageId, reply.origin);
          continue;
        }
      } catch (error) {
        this.link.reportFailure('reply liveness', error);
        return;
      }
      reply.held = [];
      void this.repair(messageId, reply);
    }
  }

  /** Heartbeat found an instance gone: every reply it listed as streaming is ended. */
  private async endRepliesOf(instanceId: string): Promise<void> {
    for (const live of await this.streams.liveRepliesOf(instanceId))
      if ((await this.endOrphan(live.sessionId, live.messageId, instanceId)) === 'alive') return;
    await this.streams.unlist(instanceId);
  }

  /**
   * Ends a reply whose instance is gone, once across instances: a done frame (`stopped:"true"`,
   * `status:"interrupted"`) appended to its buffer and sent to every socket
   * of the session, its lock released, then the text of the buffer stored as interrupted.
   */
  private async endOrphan(
    sessionId: string,
    messageId: string,
    owner: string,
    checkpoint?: OrphanedReply['checkpoint'],
  ): Promise<EndOutcome> {
    const read = await this.streams.read(sessionId, messageId);
    if (read.done) {
      await this.streams.unlist(owner, messageId);
      // Ended already (its done frame may not have reached this instance): the sockets here get it.
      if (this.remoteReplies.has(messageId)) {
        this.deliverHistory(messageId, sessionId, read.frames);
        this.finished(messageId);
      }
      return 'ended_elsewhere';
    }
    const live = await this.streams.liveReply(owner, messageId);
    const last = read.frames.at(-1);
    const done: ReplyDone = {
      kind: 'replyDone',
      sessionId,
      messageId,
      modelId: live?.modelId ?? last?.modelId,
      seq: last ? last.seq + 1 : 0,
      ending: { status: 'interrupted' },
      at: instant(),
    };
    const envelope: ReplyEnvelope = { origin: this.link.instanceId, kind: 'reply', event: done };
    const outcome = await this.streams.end(owner, envelope);
    if (outcome !== 'ended') return outcome;
    this.remoteChange?.(sessionId);
    this.receiveReplyFrame(envelope);
    this.events.emit({ type: 'reply.orphan_closed' });
    this.logger.warn(
      { sessionId, messageId, instance: owner },
      'reply of a gone instance ended as interrupted',
    );
    await this.storeOrphan?.({
      sessionId,
      messageId,
      owner,
      live,
      text: read.whole ? read.text : undefined,
      checkpoint,
    });
    return outcome;
  }

  private remember(messageId: string, reply: RemoteReply): void {
    this.remoteReplies.set(messageId, reply);
    // A crashed streamer never sends its done frame: forget the oldest beyond a bound.
    if (this.remoteReplies.size > MAX_REMOTE_REPLIES)
      this.remoteReplies.delete(this.remoteReplies.keys().next().value as string);
  }

  private finished(messageId: string): void {
    this.remoteReplies.delete(messageId);
    this.ended.add(messageId);
    if (this.ended.size > MAX_ENDED_REPLIES) this.ended.delete(this.ended.values().next().value as string);
  }
}

/** The text of a reply up to `seq` in one frame, for a socket that had none of it (SPEC 4.6). */
function catchUp(frame: ReplyStreamEvent, text: string, seq: number): ReplyCatchUp {
  const { sessionId, messageId, modelId } = frame;
  return { kind: 'replyCatchUp', sessionId, messageId, modelId, seq, text, at: instant() };
}

/** A finished reply as one non-streaming message (what `stream_resume` answers from storage too). */
function replayed(frames: ReplyStreamEvent[], done: ReplyDone): ReplyReplayed {
  const { sessionId, messageId, modelId, ending } = done;
  return {
    kind: 'replyReplayed',
    sessionId,
    messageId,
    modelId,
    text: textOf(frames),
    ending,
    at: instant(),
  };
}
