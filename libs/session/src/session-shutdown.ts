import { Injectable } from '@nestjs/common';
import { AppConfig, InjectConfig, ShutdownState } from '@chatbox/common';
import { ConversationStore } from '@chatbox/storage';
import { ReplyService } from './reply/reply.service';

/**
 * The session half of SPEC 13's drain, after the gateway stopped accepting and told every socket:
 * replies in flight finish (or are interrupted after the grace period), then every queued write is
 * flushed; what the database does not take by the deadline stays in the outbox journal.
 */
@Injectable()
export class SessionShutdown {
  constructor(
    private readonly replies: ReplyService,
    private readonly store: ConversationStore,
    private readonly shutdown: ShutdownState,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  async drain(): Promise<{ replies: number; unwritten: number }> {
    const replies = this.replies.inFlight;
    const { shutdownReplyGraceMs, shutdownDeadlineMs, shutdownFlushMarginMs } = this.config.protocol;
    // The process's deadline runs from SIGTERM (main.ts exits when it passes), not from here.
    const began = this.shutdown.drainingSince ?? Date.now();
    await this.replies.drain(shutdownReplyGraceMs);
    // The writes of replies that used their whole grace still get what is left of the deadline,
    // less the margin that closing the connection and stopping the embedded database need.
    const unwritten = await this.store.flush(began + shutdownDeadlineMs - shutdownFlushMarginMs);
    return { replies, unwritten };
  }
}
