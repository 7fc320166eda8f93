import { Injectable, Module, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Subscription } from 'rxjs';
import { ChatboxEvents } from '@chatbox/common';
import { LlmModule, LlmObserverEvent, LlmService } from '@chatbox/llm';
import { MetricsService } from '@chatbox/metrics';
import { NotificationModule, NotificationService } from '@chatbox/notification';

type StopTimer = () => void;

/**
 * The composition root's wiring of observers to Prometheus: domain events, LLM stream events and
 * notification outcomes become the metrics of SPEC 12. No feature module imports metrics.
 */
@Injectable()
export class MetricsWiring implements OnModuleInit, OnModuleDestroy {
  private readonly subscription = new Subscription();
  private readonly streamsInFlight = new Map<string, StopTimer[]>();
  private readonly undo: (() => void)[] = [];

  constructor(
    private readonly metrics: MetricsService,
    private readonly events: ChatboxEvents,
    private readonly llm: LlmService,
    private readonly notifications: NotificationService,
  ) {}

  onModuleInit(): void {
    this.subscription.add(
      this.events.events$.subscribe((event) => {
        switch (event.type) {
          case 'socket.opened':
            return this.metrics.websocketOpened();
          case 'socket.closed':
            return this.metrics.websocketClosed(event.durationSeconds);
          case 'message.received':
            return this.metrics.messageReceived();
          case 'message.sent':
            return this.metrics.messageSent(event.count);
          case 'message.error':
            return this.metrics.messageError();
          case 'ratelimit.blocked':
            return this.metrics.rateLimited(event.limiter);
          case 'session.created':
            return this.metrics.sessionCreated();
          case 'session.ended':
            return this.metrics.sessionEnded();
          case 'takeover.started':
            this.metrics.adminTakeover();
            if (event.humanWaitSeconds !== undefined) this.metrics.observeHumanWait(event.humanWaitSeconds);
            return;
          case 'redis.availability':
            return this.metrics.setRedisAvailable(event.available);
          case 'reply.orphan_closed':
            return this.metrics.orphanedReplyClosed();
          case 'reply.frames_recovered':
            return this.metrics.replyFramesRecoveredBy(event.count);
        }
      }),
    );
    this.undo.push(this.llm.observe((event) => this.onLlmEvent(event)));
    this.undo.push(
      this.notifications.addObserver((channel, outcome) =>
        outcome === 'sent'
          ? this.metrics.notificationSent(channel)
          : this.metrics.notificationFailed(channel),
      ),
    );
  }

  onModuleDestroy(): void {
    this.subscription.unsubscribe();
    this.undo.forEach((remove) => remove());
  }

  private onLlmEvent(event: LlmObserverEvent): void {
    switch (event.kind) {
      case 'request': {
        const open = this.streamsInFlight.get(event.provider) ?? [];
        open.push(this.metrics.llmRequest(event.provider));
        this.streamsInFlight.set(event.provider, open);
        return;
      }
      case 'first_token':
        if (event.value !== undefined) this.metrics.observeLlmLatency(event.provider, event.value);
        return;
      case 'tokens':
        if (event.value !== undefined) this.metrics.tokensUsedBy(event.provider, event.value);
        return;
      case 'error':
        return this.metrics.llmError(event.provider);
      case 'done':
        this.streamsInFlight.get(event.provider)?.pop()?.();
        return;
    }
  }
}

@Module({ imports: [LlmModule, NotificationModule], providers: [MetricsWiring] })
export class ObservabilityModule {}
