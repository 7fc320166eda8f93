import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { AppConfig, InjectConfig } from '@chatbox/common';
import { MessageCounters, StoredMessage } from './session.model';
import { SessionRepository } from './session.repository';

interface PendingPush {
  sessionId: string;
  message: StoredMessage;
  counters: MessageCounters;
}

/**
 * SPEC 13: when MongoDB stays unreachable after the retries, finished messages wait here (bounded,
 * in order) and are written on recovery. The `$push` is idempotent on the message id, so a flush
 * that races a late success never duplicates. When full, `add` refuses and the caller reports
 * DATABASE_ERROR: nothing acknowledged is dropped silently.
 */
@Injectable()
export class MessageOutbox implements OnModuleDestroy {
  private readonly logger = new Logger(MessageOutbox.name);
  private readonly pending: PendingPush[] = [];
  private timer?: NodeJS.Timeout;
  private flushing = false;

  constructor(
    private readonly sessions: SessionRepository,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  get size(): number {
    return this.pending.length;
  }

  add(sessionId: string, message: StoredMessage, counters: MessageCounters = {}): boolean {
    if (this.pending.length >= this.config.protocol.outboxCapacity) return false;
    this.pending.push({ sessionId, message, counters });
    this.logger.warn(
      { sessionId, messageId: message.id, queued: this.pending.length },
      'message queued for MongoDB',
    );
    this.schedule();
    return true;
  }

  /** Writes queued messages in order; stops at the first failure and tries again later. */
  async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const next = this.pending[0];
        await this.sessions.pushMessage(next.sessionId, next.message, next.counters);
        this.pending.shift();
      }
      this.logger.log('message outbox flushed');
    } catch (error) {
      this.logger.warn({ err: (error as Error).message, queued: this.pending.length }, 'outbox flush failed');
    } finally {
      this.flushing = false;
      if (this.pending.length > 0) this.schedule();
    }
  }

  async onModuleDestroy(): Promise<void> {
    clearTimeout(this.timer);
    if (this.pending.length > 0) await this.flush();
    if (this.pending.length > 0)
      this.logger.error(
        { lost: this.pending.length },
        'MongoDB unreachable at shutdown: queued messages not stored',
      );
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.config.protocol.outboxFlushIntervalMs);
    this.timer.unref();
  }
}
