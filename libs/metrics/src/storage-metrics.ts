import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { AppConfig, InjectConfig } from '@chatbox/common';
import { MongoRetry, SessionRepository } from '@chatbox/storage';
import { MetricsService } from './metrics.service';

/**
 * Connects storage to the metrics without storage knowing Prometheus: times every repository
 * operation through the `MongoRetry` hook and reads the active-session count from the database.
 *
 * The count is read at start and again every SESSION_CLEANUP_INTERVAL: the session module's
 * `session.created`/`session.ended` events move the gauge in between, and the resync corrects drift (sessions ended by another instance or
 * while this one was down). Every instance therefore reports the cluster-wide number.
 */
@Injectable()
export class StorageMetrics implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(StorageMetrics.name);
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly metrics: MetricsService,
    private readonly retry: MongoRetry,
    private readonly sessions: SessionRepository,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.retry.observe((operation, seconds) => this.metrics.observeMongo(operation, seconds));
  }

  /** Not awaited: a database that is down at start must not hold start-up (readiness reports it). */
  onApplicationBootstrap(): void {
    void this.resyncActiveSessions();
    this.timer = setInterval(() => void this.resyncActiveSessions(), this.config.session.cleanupIntervalMs);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  async resyncActiveSessions(): Promise<void> {
    try {
      const count = await this.sessions.countActive();
      if (!this.stopped) this.metrics.setActiveSessions(count);
    } catch (error) {
      if (!this.stopped)
        this.logger.warn({ err: (error as Error).message }, 'could not read the active session count');
    }
  }
}
