import { Module } from '@nestjs/common';
import { AppConfig, APP_CONFIG, ChatboxEvents } from '@chatbox/common';
import { FilesModule } from '@chatbox/files';
import { LlmModule } from '@chatbox/llm';
import { NotificationModule } from '@chatbox/notification';
import { AlertRelay } from './alert-relay';
import { ChatService } from './chat.service';
import { MessageRateLimit } from './message-rate-limit';
import { frameHandlerProviders } from './frame-handlers';
import { HelpQueueService } from './help-queue.service';
import { ConnectionRegistry, InProcessConnectionRegistry } from './ports/connection-registry';
import { InProcessSessionBroadcaster, SessionBroadcaster } from './ports/session-broadcaster';
import { InProcessReplyLock, ReplyLock } from './ports/reply-lock';
import { InstanceLiveness } from './multi-instance/instance-liveness';
import { RedisConnectionRegistry } from './multi-instance/redis-connection-registry';
import { RedisLink } from './multi-instance/redis-link';
import { RedisLinkModule } from './multi-instance/redis-link.module';
import { RedisReplyLock } from './multi-instance/redis-reply-lock';
import { RedisSessionBroadcaster } from './multi-instance/redis-session-broadcaster';
import { ReplyAttachments } from './reply/reply-attachments';
import { ReplyRecovery } from './reply/reply-recovery';
import { ReplyService } from './reply/reply.service';
import { SessionShutdown } from './session-shutdown';
import { SessionCleanupService } from './session-cleanup.service';
import { SessionService } from './session.service';
import { SocketBinding } from './socket-binding';
import { TakeoverService } from './takeover.service';
import { TrafficMonitor } from './traffic-monitor';

/**
 * Session rules and reply streaming. The ports (registry, broadcaster, reply lock, and the app-wide
 * rate limiter of `RedisLinkModule`) are bound to in-process implementations, or to the Redis
 * adapters when `REDIS_URL` is set (multi-instance mode, SPEC 10) sharing one command and one
 * subscriber connection (`RedisLink`).
 */
@Module({
  imports: [RedisLinkModule, LlmModule, NotificationModule, FilesModule],
  providers: [
    InstanceLiveness,
    {
      provide: ConnectionRegistry,
      inject: [APP_CONFIG, RedisLink, InstanceLiveness],
      useFactory: (config: AppConfig, link: RedisLink, liveness: InstanceLiveness) =>
        link.enabled
          ? new RedisConnectionRegistry(config, link, liveness)
          : new InProcessConnectionRegistry(config),
    },
    {
      provide: SessionBroadcaster,
      inject: [ConnectionRegistry, RedisLink, InstanceLiveness, ChatboxEvents],
      useFactory: (
        registry: ConnectionRegistry,
        link: RedisLink,
        liveness: InstanceLiveness,
        events: ChatboxEvents,
      ) =>
        link.enabled
          ? new RedisSessionBroadcaster(registry, link, liveness, events)
          : new InProcessSessionBroadcaster(registry),
    },
    {
      provide: ReplyLock,
      inject: [RedisLink, InstanceLiveness],
      useFactory: (link: RedisLink, liveness: InstanceLiveness) =>
        link.enabled ? new RedisReplyLock(link, liveness) : new InProcessReplyLock(),
    },
    SessionService,
    ReplyService,
    ReplyAttachments,
    ReplyRecovery,
    SessionShutdown,
    ChatService,
    SocketBinding,
    ...frameHandlerProviders,
    MessageRateLimit,
    SessionCleanupService,
    TakeoverService,
    HelpQueueService,
    AlertRelay,
    TrafficMonitor,
  ],
  exports: [
    ChatService,
    SessionService,
    TakeoverService,
    HelpQueueService,
    TrafficMonitor,
    ReplyService,
    ReplyRecovery,
    SessionShutdown,
    ConnectionRegistry,
    SessionBroadcaster,
    LlmModule,
    FilesModule,
  ],
})
export class SessionModule {}
