import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { ConversationStore, ReplyCheckpoint, StoredMessage } from '@chatbox/storage';
import { InstanceLiveness } from '../multi-instance/instance-liveness';
import { RedisLink } from '../multi-instance/redis-link';
import { ConnectionRegistry } from '../ports/connection-registry';
import { OrphanedReply, SessionBroadcaster } from '../ports/session-broadcaster';

/**
 * Replies a dead process was streaming (SPEC 8 checkpoints, issue 14): stored as `interrupted` with
 * the text they had reached, so history shows them and `stream_resume` answers with a done frame.
 *
 * - One process: at start-up every checkpoint of another process is such a reply.
 * - Several instances: the instance that notices a gone instance (heartbeat or `stream_resume`) ends
 *   its replies through the broadcaster, which hands them here to be stored, with the whole text of
 *   the reply buffer. At start-up, once other instances can be judged, checkpoints of gone instances
 *   that the buffers no longer know (Redis lost them) are ended the same way.
 */
@Injectable()
export class ReplyRecovery implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ReplyRecovery.name);
  private waiting?: NodeJS.Timeout;

  constructor(
    private readonly store: ConversationStore,
    private readonly registry: ConnectionRegistry,
    private readonly broadcaster: SessionBroadcaster,
    private readonly link: RedisLink,
    private readonly liveness: InstanceLiveness,
  ) {
    broadcaster.onOrphanedReply((orphan) => this.storeInterrupted(orphan));
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.link.enabled) return this.recoverAtStartUp();
    // Other instances are judged only once Redis has answered for a liveness TTL: start-up goes on.
    const whenJudging = () => {
      if (!this.liveness.canJudge) {
        this.waiting = setTimeout(whenJudging, this.liveness.intervalMs);
        this.waiting.unref();
        return;
      }
      void this.recoverAtStartUp();
    };
    whenJudging();
  }

  onApplicationShutdown(): void {
    clearTimeout(this.waiting);
  }

  private async recoverAtStartUp(): Promise<void> {
    await this.recoverOrphans().catch((error: unknown) =>
      this.logger.warn({ err: (error as Error).message }, 'could not recover interrupted replies'),
    );
  }

  /** Ends the replies whose process is gone; returns their message ids. */
  async recoverOrphans(): Promise<string[]> {
    const recovered: string[] = [];
    for (const checkpoint of await this.store.checkpoints()) {
      if (checkpoint.owner === this.link.instanceId) continue;
      if (await this.registry.isInstanceAlive(checkpoint.owner)) continue;
      await this.broadcaster.endOrphanedReply({
        sessionId: checkpoint.sessionId,
        messageId: checkpoint.message.id,
        owner: checkpoint.owner,
        checkpoint,
      });
      recovered.push(checkpoint.message.id);
    }
    if (recovered.length > 0)
      this.logger.warn({ replies: recovered.length }, 'replies of a stopped process stored as interrupted');
    return recovered;
  }

  /**
   * Stores an orphaned reply once (an insert by its id: a second one is a no-op): the buffer's whole
   * text, or its last checkpoint's when that has more (Redis lost the buffer). Nothing is stored for a reply that had said
   * nothing and never checkpointed.
   */
  private async storeInterrupted(orphan: OrphanedReply): Promise<void> {
    const checkpoint =
      orphan.checkpoint ??
      (orphan.text === undefined || !orphan.live ? await this.findCheckpoint(orphan.messageId) : undefined);
    // Both are the start of the same reply: the longer one has more of it.
    const text = [orphan.text, checkpoint?.message.content].reduce<string | undefined>(
      (longest, candidate) => ((candidate?.length ?? -1) > (longest?.length ?? -1) ? candidate : longest),
      undefined,
    );
    const userId = orphan.live?.userId ?? checkpoint?.userId;
    const position = orphan.live?.position ?? checkpoint?.message.seq;
    if (userId === undefined || position === undefined || (!text && !checkpoint)) return;
    const message: StoredMessage = {
      id: orphan.messageId,
      seq: position,
      type: 'ai_response',
      content: text ?? '',
      timestamp: checkpoint?.message.timestamp ?? new Date(),
      sender: 'ai',
      meta: {
        ...(checkpoint?.message.meta ?? {}),
        ...(orphan.live ? { model_id: orphan.live.modelId } : {}),
        status: 'interrupted',
      },
    };
    // The outbox keeps it through a database outage; nobody waits for the write.
    void this.store
      .recoverCheckpoint({
        sessionId: orphan.sessionId,
        message,
        userId,
        owner: orphan.owner,
        updatedAt: new Date(),
      })
      .catch((error: unknown) =>
        this.logger.error(
          { err: error, sessionId: orphan.sessionId, messageId: orphan.messageId },
          'could not store an interrupted reply',
        ),
      );
  }

  private async findCheckpoint(messageId: string): Promise<ReplyCheckpoint | undefined> {
    return (await this.store.checkpoints()).find((checkpoint) => checkpoint.message.id === messageId);
  }
}
