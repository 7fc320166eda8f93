import type { ConversationStore, MessageCounters, SessionRecord } from '@chatbox/storage';
import type { ReplyBuffer } from './reply-buffer';

/**
 * What is stored of a reply (SPEC 4.5 step 7, SPEC 8): when it starts, a marker in the outbox journal
 * (a local file, no database write); while it streams, its text so far every `intervalMs` (a
 * checkpoint replaced by id: a few writes per reply, never one per chunk); at the end, the whole reply
 * once, queued (the done frame does not wait), its checkpoint deleted by the same write. A process
 * killed at any point leaves the reply to be stored as `interrupted` by the next start.
 */
export class ReplyRecorder {
  private timer?: NodeJS.Timeout;
  private savedBytes = 0;
  private checkpointed = false;

  constructor(
    private readonly store: ConversationStore,
    private readonly session: SessionRecord,
    private readonly buffer: ReplyBuffer,
    /** The streaming instance: another instance recovers the reply only when this one is gone. */
    private readonly owner: string,
    private readonly intervalMs: number,
  ) {}

  startCheckpoints(): void {
    this.store.markReplyStarted(this.session, this.streamingMessage(), this.owner);
    this.timer = setInterval(() => this.checkpoint(), this.intervalMs);
    this.timer.unref();
  }

  stopCheckpoints(): void {
    clearInterval(this.timer);
  }

  /**
   * Stores the whole reply (queued; the outbox keeps it through an outage). Rejects with
   * DATABASE_ERROR only when the outbox is full; `written` settles when it reached the database.
   */
  async record(
    meta: Record<string, string>,
    counters: MessageCounters,
    conversationId?: string,
  ): Promise<{ written: Promise<void> }> {
    try {
      const { written } = await this.store.appendMessage(this.session, this.buffer.message(meta), counters, {
        dropsCheckpoint: this.checkpointed,
      });
      if (conversationId) this.store.setDifyConversation(this.session, conversationId);
      return { written };
    } finally {
      this.release();
    }
  }

  /** The reply is over (stored, or not to be stored): nothing more to recover of it. Idempotent. */
  release(): void {
    this.stopCheckpoints();
    this.store.clearReplyMarker(this.buffer.messageId);
  }

  private checkpoint(): void {
    if (this.buffer.bytes === this.savedBytes) return;
    this.savedBytes = this.buffer.bytes;
    this.checkpointed = true;
    this.store.checkpoint(this.session, this.streamingMessage(), this.owner);
  }

  private streamingMessage() {
    return this.buffer.message({ model_id: this.buffer.modelId, status: 'streaming' });
  }
}
