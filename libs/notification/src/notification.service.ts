import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit, Optional } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import { AppConfig, InjectConfig, RateLimiter } from '@chatbox/common';
import { ChannelSender, Delivery, EmailSender, SmsSender, WebhookSender } from './channels';
import {
  HELP_REQUEST_ALERTS_PER_WINDOW,
  NOTIFICATION_LIMIT_KEY_PREFIX,
  NOTIFICATION_OBSERVER,
  NOTIFICATION_TIMEOUTS,
  NotificationTimeouts,
} from './notification.constants';
import {
  AlertEvent,
  AlertOutcome,
  ChannelTally,
  DashboardAlert,
  DatabaseRecoveredAlert,
  DatabaseUnreachableAlert,
  DeliveryOutcome,
  HelpRequestAlert,
  LlmFailingAlert,
  NOTIFICATION_CHANNELS,
  NotificationChannel,
  NotificationObserver,
  RateLimitSpikeAlert,
  RenderedAlert,
} from './notification.types';
import {
  renderDatabaseRecovered,
  renderDatabaseUnreachable,
  renderHelpRequest,
  renderLlmFailing,
  renderRateLimitSpike,
} from './templates';

/**
 * Admin alerts (SPEC 7) over e-mail, SMS, webhook and the in-process dashboard stream.
 *
 * Every alert method is safe to call without awaiting: the returned promise never rejects, and a
 * slow or failing channel only shows up in the outcome, the counters and the log. Await it only
 * when you need the outcome (tests, admin tooling).
 */
@Injectable()
export class NotificationService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(NotificationService.name);
  private readonly dashboard = new Subject<DashboardAlert>();
  private readonly senders: ChannelSender[] = [];
  private readonly observers = new Set<NotificationObserver>();
  private readonly tallies = new Map<NotificationChannel, ChannelTally>(
    NOTIFICATION_CHANNELS.map((channel) => [channel, { sent: 0, failed: 0 }]),
  );
  private suppressedCount = 0;

  /**
   * Live alerts for admin dashboards on this instance. The session module's `AlertRelay` subscribes
   * once and sends each value to every dashboard socket as a `notification` frame (see `DashboardAlert`).
   */
  readonly dashboardEvents$: Observable<DashboardAlert> = this.dashboard.asObservable();

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly limiter: RateLimiter,
    @Inject(NOTIFICATION_TIMEOUTS) timeouts: NotificationTimeouts,
    @Optional() @Inject(NOTIFICATION_OBSERVER) observer?: NotificationObserver,
  ) {
    const { smtp, sms, webhookUrl, adminEmails, adminPhones } = config.notify;
    if (smtp && adminEmails.length > 0) this.senders.push(new EmailSender(smtp, adminEmails, timeouts));
    if (sms?.fromNumber && adminPhones.length > 0)
      this.senders.push(new SmsSender({ ...sms, fromNumber: sms.fromNumber }, adminPhones, timeouts));
    if (webhookUrl) this.senders.push(new WebhookSender(webhookUrl, timeouts));
    if (observer) this.observers.add(observer);
  }

  onModuleInit(): void {
    const { smtp, sms, adminEmails, adminPhones } = this.config.notify;
    if (smtp && adminEmails.length === 0) this.logger.warn('SMTP_HOST is set but ADMIN_EMAILS is empty');
    if (sms && !sms.fromNumber) this.logger.warn('SMS is configured without SMS_FROM_NUMBER; SMS is off');
    if (sms && adminPhones.length === 0) this.logger.warn('SMS is configured but ADMIN_PHONES is empty');
    this.logger.log(`Notification channels: ${this.enabledChannels().join(', ')}`);
  }

  onModuleDestroy(): void {
    this.dashboard.complete();
    for (const sender of this.senders) sender.close();
  }

  /**
   * Key `help:<sessionId>`, one alert per session per NOTIFY_RATE_WINDOW (SPEC 4.7). A new request
   * (`newRequest`: also one made again after a resolve) reaches the dashboards in any case: the
   * live help queue must show every change of it.
   */
  helpRequested(alert: HelpRequestAlert): Promise<AlertOutcome> {
    return this.dispatch(
      'help_requested',
      `help:${alert.sessionId}`,
      HELP_REQUEST_ALERTS_PER_WINDOW,
      () => renderHelpRequest(alert, alert.at ?? new Date(), this.config.notify.adminPanelUrl),
      { dashboardOutsideLimit: alert.newRequest === true },
    );
  }

  /** Key `llm:<providerId>`. The caller decides when a provider counts as failing. */
  llmFailing(alert: LlmFailingAlert): Promise<AlertOutcome> {
    return this.dispatch('llm_failing', `llm:${alert.providerId}`, this.config.notify.rateLimit, () =>
      renderLlmFailing(alert, alert.at ?? new Date()),
    );
  }

  /**
   * Key `mongo:unreachable`. Outage and recovery have separate budgets so a flapping outage can
   * never use up the budget of the "recovered" alert that tells admins they can stand down.
   */
  databaseUnreachable(alert: DatabaseUnreachableAlert): Promise<AlertOutcome> {
    return this.dispatch('database_unreachable', 'mongo:unreachable', this.config.notify.rateLimit, () =>
      renderDatabaseUnreachable(alert, alert.at ?? new Date()),
    );
  }

  /** Key `mongo:recovered`. */
  databaseRecovered(alert: DatabaseRecoveredAlert): Promise<AlertOutcome> {
    return this.dispatch('database_recovered', 'mongo:recovered', this.config.notify.rateLimit, () =>
      renderDatabaseRecovered(alert, alert.at ?? new Date()),
    );
  }

  /** Key `ratelimit:<limiter>`. */
  rateLimitSpike(alert: RateLimitSpikeAlert): Promise<AlertOutcome> {
    return this.dispatch('rate_limit_spike', `ratelimit:${alert.limiter}`, this.config.notify.rateLimit, () =>
      renderRateLimitSpike(alert, alert.at ?? new Date()),
    );
  }

  /** Adds a delivery observer (e.g. metrics); returns the function that removes it. */
  addObserver(observer: NotificationObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** Messages sent and failed per channel since start, and alerts suppressed by the rate limit. */
  counters(): { channels: Record<NotificationChannel, ChannelTally>; suppressed: number } {
    const channels = Object.fromEntries(
      [...this.tallies].map(([channel, tally]) => [channel, { ...tally }]),
    ) as Record<NotificationChannel, ChannelTally>;
    return { channels, suppressed: this.suppressedCount };
  }

  enabledChannels(): NotificationChannel[] {
    return [...this.senders.map((sender) => sender.channel), 'dashboard'];
  }

  /** `dashboardOutsideLimit`: the dashboards get the alert even when the key is over its budget. */
  private async dispatch(
    event: AlertEvent,
    key: string,
    limit: number,
    render: () => RenderedAlert,
    { dashboardOutsideLimit = false } = {},
  ): Promise<AlertOutcome> {
    try {
      const alert = render();
      if (!(await this.withinBudget(key, limit))) {
        this.suppressedCount++;
        this.logger.debug(`Alert ${alert.event} suppressed: ${key} is over its notification budget`);
        const channels = dashboardOutsideLimit ? { dashboard: this.publishToDashboard(alert) } : {};
        return { event, key, status: 'suppressed', channels };
      }
      const channels: AlertOutcome['channels'] = { dashboard: this.publishToDashboard(alert) };
      const results = await Promise.all(
        this.senders.map(async (sender) => [sender.channel, await this.deliverAll(sender, alert)] as const),
      );
      for (const [channel, tally] of results) channels[channel] = tally;
      return { event, key, status: 'dispatched', channels };
    } catch (error) {
      // Only a defect in this module lands here; the chat must not pay for it.
      this.logger.error(`Alert for ${key} could not be dispatched: ${(error as Error).message}`);
      return { event, key, status: 'dispatched', channels: {} };
    }
  }

  /**
   * The app's shared limiter (per instance, or across instances through Redis, falling back to a
   * per-instance window while Redis is down). A broken limiter must not silence alerts: fail open.
   */
  private async withinBudget(key: string, limit: number): Promise<boolean> {
    try {
      const limitKey = NOTIFICATION_LIMIT_KEY_PREFIX + key;
      return (await this.limiter.hit(limitKey, limit, this.config.notify.rateWindowMs)).allowed;
    } catch (error) {
      this.logger.warn(`Notification rate limiter failed for ${key} (${(error as Error).message}); sending`);
      return true;
    }
  }

  private publishToDashboard(alert: RenderedAlert): ChannelTally {
    try {
      this.dashboard.next({
        event: alert.event,
        content: alert.summary,
        sessionId: alert.sessionId,
        timestamp: alert.timestamp,
        metadata: { ...alert.fields },
      });
      this.record('dashboard', 'sent');
      return { sent: 1, failed: 0 };
    } catch (error) {
      this.logger.warn(`Dashboard alert ${alert.event} failed: ${(error as Error).message}`);
      this.record('dashboard', 'failed');
      return { sent: 0, failed: 1 };
    }
  }

  private async deliverAll(sender: ChannelSender, alert: RenderedAlert): Promise<ChannelTally> {
    const outcomes = await Promise.all(
      sender.deliveries(alert).map((delivery) => this.deliver(sender, delivery, alert)),
    );
    return {
      sent: outcomes.filter((outcome) => outcome === 'sent').length,
      failed: outcomes.filter((outcome) => outcome === 'failed').length,
    };
  }

  private async deliver(
    sender: ChannelSender,
    delivery: Delivery,
    alert: RenderedAlert,
  ): Promise<DeliveryOutcome> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        delivery.send(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${sender.deadlineMs} ms`)),
            sender.deadlineMs,
          );
        }),
      ]);
      this.record(sender.channel, 'sent');
      return 'sent';
    } catch (error) {
      // Transport errors carry server replies and codes, never our credentials or the message body.
      this.logger.warn(
        `Alert ${alert.event} via ${sender.channel} to ${delivery.recipient} failed: ${describeError(error)}`,
      );
      this.record(sender.channel, 'failed');
      return 'failed';
    } finally {
      clearTimeout(timer);
    }
  }

  private record(channel: NotificationChannel, outcome: DeliveryOutcome): void {
    const tally = this.tallies.get(channel) as ChannelTally;
    tally[outcome]++;
    for (const observer of this.observers) {
      try {
        observer(channel, outcome);
      } catch (error) {
        this.logger.warn(`Notification observer failed: ${(error as Error).message}`);
      }
    }
  }
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as Error & { code?: string }).code;
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.name}: ${error.message}${code ? ` [${code}]` : ''}${cause}`;
}
