import type Redis from 'ioredis';
import type { LiveReply } from '../ports/session-broadcaster';
import type { ReplyDone, ReplyStreamEvent } from '../session-events';
import { livenessKey } from './instance-liveness';
import { lockHolderPrefix, lockKey } from './redis-reply-lock';
import { RedisLink } from './redis-link';

/** Frames kept per reply for `stream_resume` (trimmed approximately beyond this). */
const REPLY_STREAM_MAXLEN = 10_000;
/**
 * A reply buffer outlives its last frame by this long, so a crashed instance leaves nothing behind;
 * a reply this instance could not write out (Redis gone for good) is forgotten after it too.
 */
export const REPLY_STREAM_TTL_MS = 10 * 60_000;

/** What travels on the session channel for a frame of an AI reply. */
export interface ReplyEnvelope {
  origin: string;
  kind: 'reply';
  event: ReplyStreamEvent;
}

/** A reply's buffer as read back. */
export interface ReplyStreamRead {
  /** In `seq` order, each `seq` once. */
  frames: ReplyStreamEvent[];
  /** The instance that streamed it (the last writer of the buffer). */
  owner?: string;
  done?: ReplyDone;
  /** The frames run from `seq` 0 without a hole: `text` is exactly what was streamed. */
  whole: boolean;
  text: string;
}

/**
 * Appends frames to a reply's buffer and publishes them, atomically, unless another instance ended
 * the reply (it took this one for gone). `reseed` rewrites the buffer whole (it may have been lost
 * with a Redis restart). The reply stays listed under its instance until its done frame.
 * KEYS[1] buffer, KEYS[2] ended marker, KEYS[3] this instance's live replies (hash).
 * ARGV[1] channel, [2] TTL ms, [3] max length, [4] reseed, [5] owner, [6] message id, [7] live reply
 * (JSON), [8] has the done frame, [9] n = frames to buffer, then n frames, then envelopes to publish.
 */
const APPEND_SCRIPT = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if ARGV[4] == '1' then redis.call('DEL', KEYS[1]) end
local n = tonumber(ARGV[9])
for i = 10, 9 + n do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'f', ARGV[i], 'o', ARGV[5])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[8] == '1' then
  redis.call('HDEL', KEYS[3], ARGV[6])
else
  redis.call('HSET', KEYS[3], ARGV[6], ARGV[7])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
for i = 10 + n, #ARGV do redis.call('PUBLISH', ARGV[1], ARGV[i]) end
return 1
`;

/**
 * Ends the reply of a gone instance with a done frame, once: -1 when the instance is alive after all,
 * 0 when someone else ended it already, 1 when ended here. The gone instance's lock on the session
 * is released with it (the user's next message is answered at once).
 * KEYS[1] buffer, [2] ended marker, [3] the gone instance's live replies, [4] session lock,
 * [5] the gone instance's liveness key. ARGV[1] channel, [2] TTL ms, [3] max length, [4] this
 * instance, [5] message id, [6] lock value prefix of the gone instance, [7] done frame, [8] envelope.
 */
const END_SCRIPT = `
if redis.call('EXISTS', KEYS[5]) == 1 then return -1 end
if not redis.call('SET', KEYS[2], ARGV[4], 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'f', ARGV[7], 'o', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[5])
local holder = redis.call('GET', KEYS[4])
if holder and string.sub(holder, 1, string.len(ARGV[6])) == ARGV[6] then redis.call('DEL', KEYS[4]) end
redis.call('PUBLISH', ARGV[1], ARGV[8])
return 1
`;

interface LocalReply {
  live: LiveReply;
  /** Every frame so far, index = `seq`. */
  frames: ReplyStreamEvent[];
  /** Frames below this index are buffered and published. */
  written: number;
  /** The buffer may have been lost (Redis was away): the next write rewrites it whole. */
  reseed: boolean;
  /** In this instance's live list (written before any frame, so a reply dying early is found too). */
  listed: boolean;
  writing: boolean;
  finishedAt?: number;
}

export type EndOutcome = 'ended' | 'ended_elsewhere' | 'alive';

/**
 * The Redis side of AI replies (SPEC 4.6, 10; issue 14): each reply streamed here has a buffer
 * `<prefix>reply-events:<session>:<message>` (a Redis Stream of its delta and done events) and is listed in this instance's
 * `<prefix>replies:<instance>` hash until its done frame, so that if this instance dies another one
 * can end it. Frames are buffered then published in one script, in order, one write at a time per
 * reply; frames Redis could not take wait here and go out (the buffer rewritten whole) when it is back.
 */
export class ReplyStreams {
  private readonly local = new Map<string, LocalReply>();

  constructor(
    private readonly link: RedisLink,
    private readonly channel: string,
    private readonly endedElsewhere: (live: LiveReply) => void,
  ) {
    // Redis is back: it may have restarted and lost the buffers and the live list.
    link.onCommandsBack(() => this.writeAll(true));
  }

  private get redis(): Redis {
    return this.link.commands as Redis;
  }

  isLocal(messageId: string): boolean {
    return this.local.has(messageId);
  }

  started(live: LiveReply): void {
    this.forgetAbandoned();
    const reply: LocalReply = { live, frames: [], written: 0, reseed: false, listed: false, writing: false };
    this.local.set(live.messageId, reply);
    void this.write(reply);
  }

  frame(event: ReplyStreamEvent): void {
    const reply = this.local.get(event.messageId);
    if (!reply) return;
    reply.frames[event.seq] = event;
    if (event.kind === 'replyDone') reply.finishedAt = Date.now();
    void this.write(reply);
  }

  /** Writes what waits (after an outage, or a write that failed); `reseed` rewrites every buffer. */
  writeAll(reseed = false): void {
    for (const reply of this.local.values()) {
      if (reseed) reply.reseed = true;
      void this.write(reply);
    }
  }

  /** Whether replies of this instance still wait for Redis. */
  get pending(): boolean {
    return [...this.local.values()].some(needsWrite);
  }

  async read(sessionId: string, messageId: string): Promise<ReplyStreamRead> {
    const entries = await this.redis.xrange(streamKey(this.link.prefix, sessionId, messageId), '-', '+');
    const bySeq = new Map<number, ReplyStreamEvent>();
    let owner: string | undefined;
    for (const [, fields] of entries) {
      const values = fieldsOf(fields);
      const frame = JSON.parse(values.f) as ReplyStreamEvent;
      bySeq.set(frame.seq, frame);
      if (frame.kind !== 'replyDone') owner = values.o ?? owner;
      else owner ??= values.o;
    }
    const frames = inSeqOrder(bySeq);
    return {
      frames,
      owner,
      done: frames.find((frame) => frame.kind === 'replyDone'),
      whole: isWhole(frames),
      text: textOf(frames),
    };
  }

  /** The replies a (gone) instance had listed as streaming. */
  async liveRepliesOf(instanceId: string): Promise<LiveReply[]> {
    const listed = await this.redis.hgetall(liveKey(this.link.prefix, instanceId));
    return Object.values(listed).flatMap((json) => {
      try {
        return [JSON.parse(json) as LiveReply];
      } catch {
        return [];
      }
    });
  }

  async liveReply(instanceId: string, messageId: string): Promise<LiveReply | undefined> {
    const json = await this.redis.hget(liveKey(this.link.prefix, instanceId), messageId);
    return json ? (JSON.parse(json) as LiveReply) : undefined;
  }

  async unlist(instanceId: string, messageId?: string): Promise<void> {
    const key = liveKey(this.link.prefix, instanceId);
    await (messageId ? this.redis.hdel(key, messageId) : this.redis.del(key));
  }

  /** Ends a gone instance's reply with `done` (see END_SCRIPT). */
  async end(owner: string, envelope: ReplyEnvelope): Promise<EndOutcome> {
    const { event } = envelope;
    const { sessionId, messageId } = event;
    const prefix = this.link.prefix;
    const result = await this.redis.eval(
      END_SCRIPT,
      5,
      streamKey(prefix, sessionId, messageId),
      endedKey(prefix, messageId),
      liveKey(prefix, owner),
      lockKey(prefix, sessionId),
      livenessKey(prefix, owner),
      this.channel,
      REPLY_STREAM_TTL_MS,
      REPLY_STREAM_MAXLEN,
      this.link.instanceId,
      messageId,
      lockHolderPrefix(owner),
      JSON.stringify(event),
      JSON.stringify(envelope),
    );
    return result === 1 ? 'ended' : result === 0 ? 'ended_elsewhere' : 'alive';
  }

  private async write(reply: LocalReply): Promise<void> {
    if (reply.writing || this.link.down) return;
    reply.writing = true;
    const { sessionId, messageId } = reply.live;
    const prefix = this.link.prefix;
    try {
      while (needsWrite(reply)) {
        const upTo = reply.frames.length;
        const pending = reply.frames.slice(reply.written, upTo);
        const buffered = reply.reseed ? reply.frames.slice(0, upTo) : pending;
        const envelopes = pending.map((event) =>
          JSON.stringify({ origin: this.link.instanceId, kind: 'reply', event } satisfies ReplyEnvelope),
        );
        const done = pending.some((frame) => frame.kind === 'replyDone');
        const result = await this.redis.eval(
          APPEND_SCRIPT,
          3,
          streamKey(prefix, sessionId, messageId),
          endedKey(prefix, messageId),
          liveKey(prefix, this.link.instanceId),
          this.channel,
          REPLY_STREAM_TTL_MS,
          REPLY_STREAM_MAXLEN,
          reply.reseed ? '1' : '0',
          this.link.instanceId,
          messageId,
          JSON.stringify(reply.live),
          done ? '1' : '0',
          buffered.length,
          ...buffered.map((frame) => JSON.stringify(frame)),
          ...envelopes,
        );
        this.link.reportSuccess();
        if (result === 0) {
          this.local.delete(messageId);
          this.endedElsewhere(reply.live);
          return;
        }
        reply.written = upTo;
        reply.reseed = false;
        reply.listed = true;
      }
      if (reply.finishedAt !== undefined) this.local.delete(messageId);
    } catch (error) {
      // Kept: written with the next frame, or when Redis is back.
      this.link.reportFailure('reply fan-out', error);
    } finally {
      reply.writing = false;
    }
  }

  /** Finished replies Redis never took (it stayed away): their buffers would have expired anyway. */
  private forgetAbandoned(now = Date.now()): void {
    for (const [messageId, reply] of this.local)
      if (reply.finishedAt !== undefined && now - reply.finishedAt > REPLY_STREAM_TTL_MS)
        this.local.delete(messageId);
  }
}

function needsWrite(reply: LocalReply): boolean {
  return reply.written < reply.frames.length || reply.reseed || !reply.listed;
}

export function streamKey(prefix: string, sessionId: string, messageId: string): string {
  return `${prefix}reply-events:${sessionId}:${messageId}`;
}

function endedKey(prefix: string, messageId: string): string {
  return `${prefix}reply-ended:${messageId}`;
}

function liveKey(prefix: string, instanceId: string): string {
  return `${prefix}replies:${instanceId}`;
}

function fieldsOf(fields: string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (let index = 0; index + 1 < fields.length; index += 2) values[fields[index]] = fields[index + 1];
  return values;
}

/** The text of a reply's frames (its deltas). */
export function textOf(frames: ReplyStreamEvent[]): string {
  return frames.map((frame) => (frame.kind === 'replyDelta' ? frame.text : '')).join('');
}

/** A reply's frames by `seq`, in `seq` order. */
export function inSeqOrder(bySeq: Map<number, ReplyStreamEvent>): ReplyStreamEvent[] {
  return [...bySeq.entries()].sort(([a], [b]) => a - b).map(([, frame]) => frame);
}

/** The frames run from `seq` 0 without a hole. */
export function isWhole(frames: ReplyStreamEvent[]): boolean {
  return frames.every((frame, index) => frame.seq === index);
}
