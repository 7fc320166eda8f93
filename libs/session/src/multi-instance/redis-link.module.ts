import { Global, Module } from '@nestjs/common';
import { InProcessRateLimiter, RateLimiter, RedisStatus } from '@chatbox/common';
import { RedisLink } from './redis-link';
import { RedisRateLimiter } from './redis-rate-limiter';

/**
 * The instance's one Redis link and what the libs below the session module see of it, bound once for
 * the whole app: the `RateLimiter` that messages, uploads (libs/files), alert budgets
 * (libs/notification), public and admin routes all count against (shared through Redis when
 * `REDIS_URL` is set, else in this process), and `RedisStatus` for readiness (libs/health).
 */
@Global()
@Module({
  providers: [
    RedisLink,
    { provide: RedisStatus, useExisting: RedisLink },
    {
      provide: RateLimiter,
      inject: [RedisLink],
      useFactory: (link: RedisLink): RateLimiter =>
        link.enabled ? new RedisRateLimiter(link) : new InProcessRateLimiter(),
    },
  ],
  exports: [RedisLink, RedisStatus, RateLimiter],
})
export class RedisLinkModule {}
