import type { StoredMessage } from '@chatbox/storage';
import { ChatEvent, chatEvent } from '../chat-event';

/**
 * One AI reply as it streams (SPEC 4.5, 4.6): its text, its frames numbered by `seq` from 0, kept
 * for `stream_resume` and catch-up. The done frame takes the next `seq`.
 */
export class ReplyBuffer {
  private readonly frames: ChatEvent[] = [];
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

  /** Adds a delta; returns its frame and `seq`. */
  addDelta(text: string): { seq: number; frame: ChatEvent } {
    this.text += text;
    this.bytes += Buffer.byteLength(text);
    return this.add(
      chatEvent('ai_response', 'ai', {
        id: this.messageId,
        session_id: this.sessionId,
        content: text,
        model_id: this.modelId,
        metadata: { streaming: 'true', done: 'false', message_id: this.messageId, seq: String(this.nextSeq) },
      }),
    );
  }

  /** Adds the done frame (`metadata` are the figures of the reply's end). */
  addDone(metadata: Record<string, string>): { seq: number; frame: ChatEvent } {
    return this.add(
      chatEvent('ai_response', 'ai', {
        id: this.messageId,
        session_id: this.sessionId,
        model_id: this.modelId,
        metadata: {
          streaming: 'true',
          done: 'true',
          message_id: this.messageId,
          seq: String(this.nextSeq),
          ...metadata,
        },
      }),
    );
  }

  /** The frames after `lastSeq` (what a resuming socket missed). */
  framesAfter(lastSeq: number): ChatEvent[] {
    return this.frames.slice(Math.max(0, lastSeq + 1));
  }

  /** The text so far as one frame for a socket that binds mid-reply; undefined before any text. */
  catchUpFrame(): ChatEvent | undefined {
    if (this.frames.length === 0) return undefined;
    return chatEvent('ai_response', 'ai', {
      id: this.messageId,
      session_id: this.sessionId,
      content: this.text,
      model_id: this.modelId,
      metadata: {
        streaming: 'true',
        done: 'false',
        catch_up: 'true',
        message_id: this.messageId,
        seq: String(this.lastSeq),
      },
    });
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

  private add(frame: ChatEvent): { seq: number; frame: ChatEvent } {
    const seq = this.frames.length;
    this.frames.push(frame);
    return { seq, frame };
  }
}
