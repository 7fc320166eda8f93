import type { StoredMessage } from '@chatbox/storage';
import {
  instant,
  ReplyCatchUp,
  ReplyDelta,
  ReplyDone,
  ReplyEnding,
  ReplyStreamEvent,
} from '../session-events';

/**
 * One AI reply as it streams (SPEC 4.5, 4.6): its text, its frames numbered by `seq` from 0, kept
 * for `stream_resume` and catch-up. The done frame takes the next `seq`.
 */
export class ReplyBuffer {
  private readonly frames: ReplyStreamEvent[] = [];
  text = '';
  bytes = 0;

  constructor(
    readonly messageId: string,
    readonly sessionId: string,
    readonly modelId: string,
    /** The reply's place among the session's messages (its stored `seq`). */
    readonly position: number,
    private readonly maxBytes: number,
  ) {}

  get nextSeq(): number {
    return this.frames.length;
  }

  get lastSeq(): number {
    return this.frames.length - 1;
  }

  /** Whether `text` still fits the reply size bound (LLM_MAX_REPLY_SIZE). */
  fits(text: string): boolean {
    return this.bytes + Buffer.byteLength(text) <= this.maxBytes;
  }

  /** Adds a delta (the next `seq`). */
  addDelta(text: string): ReplyDelta {
    this.text += text;
    this.bytes += Buffer.byteLength(text);
    return this.add({ kind: 'replyDelta', ...this.numbered(), modelId: this.modelId, text, at: instant() });
  }

  /** Adds the done frame (the next `seq`): how the reply ended. */
  addDone(ending: ReplyEnding): ReplyDone {
    return this.add({ kind: 'replyDone', ...this.numbered(), modelId: this.modelId, ending, at: instant() });
  }

  /** The frames after `lastSeq` (what a resuming socket missed). */
  framesAfter(lastSeq: number): ReplyStreamEvent[] {
    return this.frames.slice(Math.max(0, lastSeq + 1));
  }

  /** The text so far as one frame for a socket that binds mid-reply; undefined before any text. */
  catchUp(): ReplyCatchUp | undefined {
    if (this.frames.length === 0) return undefined;
    return {
      kind: 'replyCatchUp',
      ...this.numbered(),
      seq: this.lastSeq,
      modelId: this.modelId,
      text: this.text,
      at: instant(),
    };
  }

  /** The reply as a message to store (whole, or its checkpoint while streaming). */
  message(meta: Record<string, string>): StoredMessage {
    return {
      id: this.messageId,
      seq: this.position,
      type: 'ai_response',
      content: this.text,
      timestamp: new Date(),
      sender: 'ai',
      meta,
    };
  }

  /** The reply's ids and the next `seq`. */
  private numbered() {
    return { sessionId: this.sessionId, messageId: this.messageId, seq: this.nextSeq };
  }

  private add<E extends ReplyStreamEvent>(event: E): E {
    this.frames.push(event);
    return event;
  }
}
