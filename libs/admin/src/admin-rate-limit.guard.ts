import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import {
  AppConfig,
  AuthenticatedRequest,
  ChatboxEvents,
  DomainError,
  ErrorCode,
  InjectConfig,
} from '@chatbox/common';
import { RateLimiter } from '@chatbox/session';

/** ADMIN_RATE_LIMIT requests per ADMIN_RATE_WINDOW per admin on `/admin/*`; 429 with Retry-After. */
@Injectable()
export class AdminRateLimitGuard implements CanActivate {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly events: ChatboxEvents,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const principal = context.switchToHttp().getRequest<AuthenticatedRequest>().principal;
    if (!principal) return true;
    const { adminRateLimit, adminRateWindowMs } = this.config.limits;
    const decision = await this.limiter.hit(`admin:${principal.userId}`, adminRateLimit, adminRateWindowMs);
    if (!decision.allowed) {
      this.events.emit({ type: 'ratelimit.blocked', limiter: 'admin' });
      throw new DomainError(ErrorCode.TOO_MANY_REQUESTS, 'Too many admin requests', {
        retryAfterMs: decision.retryAfterMs,
      });
    }
    return true;
  }
}
