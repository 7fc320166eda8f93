import { Module } from '@nestjs/common';
import { DEFAULT_NOTIFICATION_TIMEOUTS, NOTIFICATION_TIMEOUTS } from './notification.constants';
import { NotificationService } from './notification.service';

/**
 * Import it wherever alerts are raised, relayed or counted (the session module, the app's metrics
 * wiring); Nest keeps one `NotificationService`, so every importer sees the same `dashboardEvents$`.
 * The per-key alert budget uses the app's one `RateLimiter` (libs/common port, bound app-wide by the
 * session module's `RedisLinkModule`).
 */
@Module({
  providers: [
    { provide: NOTIFICATION_TIMEOUTS, useValue: DEFAULT_NOTIFICATION_TIMEOUTS },
    NotificationService,
  ],
  exports: [NotificationService],
})
export class NotificationModule {}
