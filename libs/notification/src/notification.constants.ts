/** Alert keys (`help:<session>`, `llm:<provider>`, ...) are counted under this prefix in the shared `RateLimiter`. */
export const NOTIFICATION_LIMIT_KEY_PREFIX = 'notify:';
/** DI token of `NotificationTimeouts`; tests shorten them. */
export const NOTIFICATION_TIMEOUTS = Symbol('NOTIFICATION_TIMEOUTS');
/** Optional DI token: a `NotificationObserver` provided by whoever counts deliveries. */
export const NOTIFICATION_OBSERVER = Symbol('NOTIFICATION_OBSERVER');

export interface NotificationTimeouts {
  /** TCP connect and SMTP greeting. */
  smtpConnectMs: number;
  /** Inactivity on an open SMTP connection. */
  smtpSocketMs: number;
  /** Whole SMS / webhook request, body included. */
  httpMs: number;
}

const SMTP_CONNECT_TIMEOUT_MS = 5_000;
const SMTP_SOCKET_TIMEOUT_MS = 10_000;
const HTTP_TIMEOUT_MS = 5_000;

export const DEFAULT_NOTIFICATION_TIMEOUTS: NotificationTimeouts = {
  smtpConnectMs: SMTP_CONNECT_TIMEOUT_MS,
  smtpSocketMs: SMTP_SOCKET_TIMEOUT_MS,
  httpMs: HTTP_TIMEOUT_MS,
};

/** SPEC 4.7: a repeated help request for the same session within the window does not re-alert. */
export const HELP_REQUEST_ALERTS_PER_WINDOW = 1;
