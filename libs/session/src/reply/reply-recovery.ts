import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { ConversationStore } from '@chatbox/storage';
import { RedisLink } from '../multi-instance/redis-link';
import { ConnectionRegistry } from '../ports/connection-registry';

/**
 * Replies a dead process was streaming (SPEC 8 checkpoints): stored as `interrupted` with the text
 * they had reached, so history shows them and `stream_resume` answers from storage with a done frame.
 * At start-up every checkpoint of another instance that is not alive is such a reply.
 */
@Injectable()
export class ReplyRecovery implements OnApplicationBootstrap {
  private readonly logger = new Logger(ReplyRecovery.name);

  constructor(
    private readonly store: ConversationStore,
    private readonly registry: ConnectionRegistry,
    private readonly link: RedisLink,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.recoverOrphans().catch((error: unknown) =>
      this.logger.warn({ err: (error as Error).message }, 'could not recover interrupted replies'),
    );
  }

  /** Stores the orphaned replies as interrupted; returns their message ids. */
  async recoverOrphans(): Promise<string[]> {
    const recovered: string[] = [];
    for (const checkpoint of await this.store.checkpoints()) {
      if (checkpoint.owner === this.link.instanceId) continue;
      if (await this.registry.isInstanceAlive(checkpoint.owner)) continue;
      await this.store.recoverCheckpoint(checkpoint);
      recovered.push(checkpoint.message.id);
    }
    if (recovered.length > 0)
      this.logger.warn({ replies: recovered.length }, 'replies of a stopped process stored as interrupted');
    return recovered;
  }
}
