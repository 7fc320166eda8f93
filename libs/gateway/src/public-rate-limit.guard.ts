import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { AppConfig, ChatboxEvents, DomainError, ErrorCode, InjectConfig, RateLimiter } from '@chatbox/common';

/** PUBLIC_RATE_LIMIT per client IP per minute on public routes (the IP honours trusted proxies). */
@Injectable()
export class PublicRateLimitGuard implements CanActivate {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly events: ChatboxEvents,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<Request>();
    const { publicRateLimit, publicRateWindowMs } = this.config.limits;
    const decision = await this.limiter.hit(`public:${request.ip}`, publicRateLimit, publicRateWindowMs);
    if (!decision.allowed) {
      this.events.emit({ type: 'ratelimit.blocked', limiter: 'public' });
      throw new DomainError(ErrorCode.TOO_MANY_REQUESTS, 'Too many requests', {
        retryAfterMs: decision.retryAfterMs,
      });
    }
    return true;
  }
}
