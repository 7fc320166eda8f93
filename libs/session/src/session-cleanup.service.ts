import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig, InjectConfig } from '@chatbox/common';
import { SessionRepository } from '@chatbox/storage';
import { ConnectionRegistry } from './ports/connection-registry';
import { ReplyService } from './reply/reply.service';
import { SessionService } from './session.service';

/** How many idle sessions one sweep looks at; the next sweep continues. */
const SWEEP_BATCH = 200;

/** Ends idle sessions that have had no socket for RECONNECT_TIMEOUT (persisting endTs and dur). */
@Injectable()
export class SessionCleanupService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SessionCleanupService.name);
  private timer?: NodeJS.Timeout;
  private sweeping = false;

  constructor(
    private readonly repository: SessionRepository,
    private readonly sessions: SessionService,
    private readonly registry: ConnectionRegistry,
    private readonly replies: ReplyService,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.sweep(), this.config.session.cleanupIntervalMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** One pass; returns the ids it ended. */
  async sweep(now = new Date()): Promise<string[]> {
    if (this.sweeping) return [];
    this.sweeping = true;
    const ended: string[] = [];
    try {
      const cutoff = new Date(now.getTime() - this.config.session.reconnectTimeoutMs);
      for (const session of await this.repository.findIdleActive(cutoff, SWEEP_BATCH)) {
        if (await this.inUse(session.id, session.userId)) continue;
        if (await this.sessions.end(session.id, 'idle')) ended.push(session.id);
      }
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'idle sweep failed; next interval retries');
    } finally {
      this.sweeping = false;
    }
    return ended;
  }

  /**
   * A socket of the session, or a reply running or waiting: here or, with several instances, on any
   * of them (the sweep of every instance looks at every idle session).
   */
  private async inUse(sessionId: string, userId: string): Promise<boolean> {
    if (this.registry.connectionsOf(sessionId).length > 0) return true;
    if (await this.replies.hasReply(sessionId)) return true;
    return this.registry.isSessionUserConnected(sessionId, userId);
  }
}
