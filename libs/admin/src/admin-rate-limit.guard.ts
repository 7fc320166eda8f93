import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import {
  AppConfig,
  AuthenticatedRequest,
  ChatboxEvents,
  DomainError,
  ErrorCode,
  InjectConfig,
  RateLimiter,
} from '@chatbox/common';

const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * Two budgets per admin on `/admin/*`, both over ADMIN_RATE_WINDOW, 429 with Retry-After:
 * actions (takeover, leave, resolve: every method but GET/HEAD) count against ADMIN_RATE_LIMIT;
 * reads count against ADMIN_READ_RATE_LIMIT, so an open dashboard never uses up the action budget.
 */
@Injectable()
export class AdminRateLimitGuard implements CanActivate {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly events: ChatboxEvents,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const principal = request.principal;
    if (!principal) return true;
    const { adminRateLimit, adminReadRateLimit, adminRateWindowMs } = this.config.limits;
    const read = READ_METHODS.has(request.method);
    const decision = await this.limiter.hit(
      `${read ? 'admin-read' : 'admin'}:${principal.userId}`,
      read ? adminReadRateLimit : adminRateLimit,
      adminRateWindowMs,
    );
    if (!decision.allowed) {
      this.events.emit({ type: 'ratelimit.blocked', limiter: 'admin' });
      throw new DomainError(
        ErrorCode.TOO_MANY_REQUESTS,
        read ? 'Too many admin reads' : 'Too many admin requests',
        { retryAfterMs: decision.retryAfterMs },
      );
    }
    return true;
  }
}
