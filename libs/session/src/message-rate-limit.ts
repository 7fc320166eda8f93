import { Injectable } from '@nestjs/common';
import { AppConfig, ChatboxEvents, DomainError, ErrorCode, InjectConfig, RateLimiter } from '@chatbox/common';
import { TrafficMonitor } from './traffic-monitor';

const LIMITER = 'messages';

/** RATE_LIMIT per user per minute for every message a user sends: text, file or voice note. */
@Injectable()
export class MessageRateLimit {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly traffic: TrafficMonitor,
    private readonly events: ChatboxEvents,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  /** Counts one message; a refusal is counted for metrics and spike alerts, then thrown. */
  async consume(userId: string): Promise<void> {
    const decision = await this.limiter.hit(
      `msg:${userId}`,
      this.config.limits.rateLimit,
      this.config.limits.rateWindowMs,
    );
    if (decision.allowed) return;
    this.traffic.rateLimited(LIMITER, userId);
    this.events.emit({ type: 'ratelimit.blocked', limiter: LIMITER });
    throw new DomainError(ErrorCode.TOO_MANY_REQUESTS, 'Too many messages; slow down', {
      retryAfterMs: decision.retryAfterMs,
    });
  }
}
