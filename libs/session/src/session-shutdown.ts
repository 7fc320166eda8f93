import { Injectable } from '@nestjs/common';
import { AppConfig, InjectConfig } from '@chatbox/common';
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
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  async drain(): Promise<{ replies: number; unwritten: number }> {
    const replies = this.replies.inFlight;
    const { shutdownReplyGraceMs, shutdownDeadlineMs } = this.config.protocol;
    const started = Date.now();
    await this.replies.drain(shutdownReplyGraceMs);
    // Whatever is left of the process's deadline (minus a margin to stop the database) goes to writes.
    const unwritten = await this.store.flush(started + (shutdownDeadlineMs - shutdownReplyGraceMs) / 2);
    return { replies, unwritten };
  }
}
