import { Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@chatbox/common';
import {
  DEFAULT_NOTIFICATION_TIMEOUTS,
  NOTIFICATION_RATE_LIMITER,
  NOTIFICATION_TIMEOUTS,
} from './notification.constants';
import { NotificationService } from './notification.service';
import { InMemoryNotificationRateLimiter, NotificationRateLimiter } from './rate-limiter';
import { RedisNotificationRateLimiter } from './redis-rate-limiter';

/**
 * Import it wherever alerts are raised, relayed or counted (the session module, the app's metrics
 * wiring); Nest keeps one `NotificationService`, so every importer sees the same `dashboardEvents$`.
 */
@Module({
  providers: [
    { provide: NOTIFICATION_TIMEOUTS, useValue: DEFAULT_NOTIFICATION_TIMEOUTS },
    {
      provide: NOTIFICATION_RATE_LIMITER,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): NotificationRateLimiter =>
        config.redisUrl
          ? RedisNotificationRateLimiter.connect(config.redisUrl)
          : new InMemoryNotificationRateLimiter(),
    },
    NotificationService,
  ],
  exports: [NotificationService],
})
export class NotificationModule {}
