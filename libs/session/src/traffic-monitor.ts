import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig, InjectConfig } from '@chatbox/common';
import { NotificationService } from '@chatbox/notification';
import { MongoHealth } from '@chatbox/storage';
import { ConnectionRegistry } from './ports/connection-registry';

/**
 * The operational alerts of SPEC 7 that no single request sees: MongoDB unreachable for longer
 * than the alert threshold (and its recovery), and a spike of rate-limit rejections.
 */
@Injectable()
export class TrafficMonitor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(TrafficMonitor.name);
  private timer?: NodeJS.Timeout;
  private downSince?: Date;
  private outageAlerted = false;
  private rejections: { at: number; userId: string; limiter: string }[] = [];

  constructor(
    private readonly mongo: MongoHealth,
    private readonly notifications: NotificationService,
    private readonly registry: ConnectionRegistry,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.checkDatabase(), this.config.protocol.databaseCheckIntervalMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** One database check; exposed for tests and called on an interval. */
  async checkDatabase(now = new Date()): Promise<void> {
    const ping = await this.mongo.ping();
    if (!ping.ok) {
      this.downSince ??= now;
      const downFor = now.getTime() - this.downSince.getTime();
      if (!this.outageAlerted && downFor >= this.config.protocol.databaseOutageAlertMs) {
        this.outageAlerted = true;
        this.logger.error({ downForMs: downFor }, 'MongoDB unreachable');
        void this.notifications.databaseUnreachable({
          since: this.downSince,
          affectedUsers: this.connectedUsers(),
          at: now,
        });
      }
      return;
    }
    if (this.downSince && this.outageAlerted) {
      void this.notifications.databaseRecovered({
        downForMs: now.getTime() - this.downSince.getTime(),
        affectedUsers: this.connectedUsers(),
        at: now,
      });
    }
    this.downSince = undefined;
    this.outageAlerted = false;
  }

  /** Called for every rate-limit rejection; alerts when they spike within the window. */
  rateLimited(limiter: string, userId: string, now = Date.now()): void {
    const { rateLimitSpikeThreshold, rateLimitSpikeWindowMs } = this.config.protocol;
    this.rejections = this.rejections.filter((rejection) => rejection.at > now - rateLimitSpikeWindowMs);
    this.rejections.push({ at: now, userId, limiter });
    const forLimiter = this.rejections.filter((rejection) => rejection.limiter === limiter);
    if (forLimiter.length < rateLimitSpikeThreshold) return;
    // The notification module rate limits per limiter key, so a sustained spike alerts once per window.
    void this.notifications.rateLimitSpike({
      limiter,
      blockedCount: forLimiter.length,
      affectedUsers: new Set(forLimiter.map((rejection) => rejection.userId)).size,
      windowMs: rateLimitSpikeWindowMs,
      at: new Date(now),
    });
  }

  private connectedUsers(): number {
    return new Set(this.registry.all().map((connection) => connection.principal.userId)).size;
  }
}
