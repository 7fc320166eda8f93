import { Module } from '@nestjs/common';
import { LlmModule } from '@chatbox/llm';
import { ChatService } from './chat.service';
import { ConnectionRegistry, InProcessConnectionRegistry } from './ports/connection-registry';
import { InProcessRateLimiter, RateLimiter } from './ports/rate-limiter';
import { InProcessSessionBroadcaster, SessionBroadcaster } from './ports/session-broadcaster';
import { ReplyService } from './reply/reply.service';
import { SessionCleanupService } from './session-cleanup.service';
import { SessionService } from './session.service';

/**
 * Session rules and reply streaming. The ports (registry, broadcaster, rate limiter) are bound to
 * in-process implementations here; multi-instance mode rebinds them to Redis adapters.
 */
@Module({
  imports: [LlmModule],
  providers: [
    { provide: ConnectionRegistry, useClass: InProcessConnectionRegistry },
    { provide: SessionBroadcaster, useClass: InProcessSessionBroadcaster },
    { provide: RateLimiter, useClass: InProcessRateLimiter },
    SessionService,
    ReplyService,
    ChatService,
    SessionCleanupService,
  ],
  exports: [
    ChatService,
    SessionService,
    ReplyService,
    ConnectionRegistry,
    SessionBroadcaster,
    RateLimiter,
    LlmModule,
  ],
})
export class SessionModule {}
