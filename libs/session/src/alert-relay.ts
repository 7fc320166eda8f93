import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Subscription } from 'rxjs';
import { LlmService } from '@chatbox/llm';
import { NotificationService } from '@chatbox/notification';
import { SessionBroadcaster } from './ports/session-broadcaster';

/**
 * Connects alert sources to their audiences: notification dashboard alerts to admin dashboard
 * sockets, and the LLM failure tracker to admin notifications (SPEC 7).
 */
@Injectable()
export class AlertRelay implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(AlertRelay.name);
  private readonly subscriptions = new Subscription();

  constructor(
    private readonly notifications: NotificationService,
    private readonly llm: LlmService,
    private readonly broadcaster: SessionBroadcaster,
  ) {}

  onModuleInit(): void {
    this.subscriptions.add(
      this.notifications.dashboardEvents$.subscribe((alert) => {
        try {
          this.broadcaster.toDashboards({
            kind: 'dashboardAlert',
            sessionId: alert.sessionId,
            summary: alert.content,
            facts: alert.metadata,
            // As the alert says it (e-mail, webhook and dashboard show the same time).
            at: alert.timestamp,
          });
        } catch (error) {
          this.logger.warn({ err: (error as Error).message }, 'dashboard relay failed');
        }
      }),
    );
    this.subscriptions.add(
      this.llm.providerFailing$.subscribe((alert) => {
        void this.notifications.llmFailing({
          providerId: alert.provider,
          consecutiveFailures: alert.consecutiveFailures,
          failureRatio: alert.failureRate,
          windowMs: alert.windowMs,
          affectedUsers: alert.affectedUsers,
          at: alert.at,
        });
      }),
    );
  }

  onModuleDestroy(): void {
    this.subscriptions.unsubscribe();
  }
}
