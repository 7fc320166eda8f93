import { Module } from '@nestjs/common';
import { FilesModule } from '@chatbox/files';
import { LlmModule } from '@chatbox/llm';
import { NotificationModule } from '@chatbox/notification';
import { AlertRelay } from './alert-relay';
import { ChatService } from './chat.service';
import { FileMessageService } from './file-message.service';
import { ConnectionRegistry, InProcessConnectionRegistry } from './ports/connection-registry';
import { InProcessRateLimiter, RateLimiter } from './ports/rate-limiter';
import { InProcessSessionBroadcaster, SessionBroadcaster } from './ports/session-broadcaster';
import { ReplyService } from './reply/reply.service';
import { SessionCleanupService } from './session-cleanup.service';
import { SessionService } from './session.service';
import { TakeoverService } from './takeover.service';
import { TrafficMonitor } from './traffic-monitor';

/**
 * Session rules and reply streaming. The ports (registry, broadcaster, rate limiter) are bound to
 * in-process implementations here; multi-instance mode rebinds them to Redis adapters.
 */
@Module({
  imports: [LlmModule, NotificationModule, FilesModule],
  providers: [
    { provide: ConnectionRegistry, useClass: InProcessConnectionRegistry },
    { provide: SessionBroadcaster, useClass: InProcessSessionBroadcaster },
    { provide: RateLimiter, useClass: InProcessRateLimiter },
    SessionService,
    ReplyService,
    ChatService,
    FileMessageService,
    SessionCleanupService,
    TakeoverService,
    AlertRelay,
    TrafficMonitor,
  ],
  exports: [
    ChatService,
    SessionService,
    TakeoverService,
    TrafficMonitor,
    ReplyService,
    ConnectionRegistry,
    SessionBroadcaster,
    RateLimiter,
    LlmModule,
    FilesModule,
  ],
})
export class SessionModule {}
