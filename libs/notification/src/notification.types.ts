/** Delivery channels. `dashboard` is the in-process stream relayed to admin dashboard sockets. */
export type NotificationChannel = 'email' | 'sms' | 'webhook' | 'dashboard';

export const NOTIFICATION_CHANNELS: readonly NotificationChannel[] = ['email', 'sms', 'webhook', 'dashboard'];

/** Value of `metadata.event` on dashboard `notification` frames (SPEC 4.8) and of `event` on webhooks. */
export type AlertEvent =
  'help_requested' | 'llm_failing' | 'database_unreachable' | 'database_recovered' | 'rate_limit_spike';

export interface HelpRequestAlert {
  userId: string;
  sessionId: string;
  sessionName?: string;
  /** Plain text; only a cut, whitespace-collapsed excerpt leaves the process. */
  lastUserMessage?: string;
  at?: Date;
  /**
   * Link base used when ADMIN_PANEL_URL is not configured (e.g. `https://chat.example.com/chatbox/admin`,
   * from the request host); ADMIN_PANEL_URL wins when set. The session's help request does not pass
   * one yet, so without ADMIN_PANEL_URL its links are relative.
   */
  adminPanelBaseUrl?: string;
  /**
   * A new entry in the help queue (a first request, or one after the last was resolved). Open
   * dashboards always hear of it: the rate limit spares the e-mail, SMS and webhook recipients
   * repeats, not the live queue. A repeat of a waiting request follows the limit on every channel.
   */
  newRequest?: boolean;
}

export interface LlmFailingAlert {
  providerId: string;
  providerName?: string;
  consecutiveFailures: number;
  /** 0..1 over `windowMs`. */
  failureRatio: number;
  windowMs?: number;
  affectedUsers: number;
  at?: Date;
}

export interface DatabaseUnreachableAlert {
  since: Date;
  affectedUsers: number;
  at?: Date;
}

export interface DatabaseRecoveredAlert {
  downForMs: number;
  affectedUsers: number;
  at?: Date;
}

export interface RateLimitSpikeAlert {
  /** Same label as `chatbox_ratelimit_blocked_total{limiter}`. */
  limiter: string;
  blockedCount: number;
  affectedUsers: number;
  windowMs: number;
  at?: Date;
}

/** One alert rendered for every channel. */
export interface RenderedAlert {
  event: AlertEvent;
  subject: string;
  text: string;
  html: string;
  sms: string;
  /** One line, used as the webhook `text` and the dashboard `content`. */
  summary: string;
  /** Structured facts, snake_case keys and string values (fit for frame `metadata`). */
  fields: Record<string, string>;
  timestamp: string;
  sessionId?: string;
  link?: string;
}

/**
 * What admin dashboards receive as a `notification` frame:
 * `{type:"notification", sender:"system", content, session_id: sessionId, timestamp, metadata}`.
 * `metadata.event` holds the event name.
 */
export interface DashboardAlert {
  event: AlertEvent;
  content: string;
  sessionId?: string;
  timestamp: string;
  metadata: Record<string, string>;
}

export type DeliveryOutcome = 'sent' | 'failed';

/** Hook for metrics (`chatbox_notifications_{sent,failed}_total{channel}`), called once per message. */
export type NotificationObserver = (channel: NotificationChannel, outcome: DeliveryOutcome) => void;

export interface ChannelTally {
  sent: number;
  failed: number;
}

export interface AlertOutcome {
  event: AlertEvent;
  /** Rate-limit key the alert was counted against. */
  key: string;
  /**
   * `suppressed`: the key had used up its budget for the window: nothing was sent, except to the
   * dashboards for a new help request (`channels.dashboard`).
   */
  status: 'dispatched' | 'suppressed';
  /** Only the channels that are switched on appear. */
  channels: Partial<Record<NotificationChannel, ChannelTally>>;
}
