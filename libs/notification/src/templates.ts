import {
  escapeHtml,
  excerpt,
  formatDuration,
  formatPercent,
  formatTimestamp,
  sessionLink,
  singleLine,
} from './format';
import {
  AlertEvent,
  DatabaseRecoveredAlert,
  DatabaseUnreachableAlert,
  HelpRequestAlert,
  LlmFailingAlert,
  RateLimitSpikeAlert,
  RenderedAlert,
} from './notification.types';

/** The requesting user is the one affected by a help request. */
const HELP_REQUEST_AFFECTED_USERS = 1;
const DEFAULT_LLM_FAILURE_WINDOW_MS = 5 * 60_000;
const NOT_GIVEN = '(none)';

interface AlertParts {
  event: AlertEvent;
  subject: string;
  headline: string;
  /** Label and value, shown in this order in the text and HTML bodies. */
  rows: Array<[label: string, value: string]>;
  sms: string;
  summary: string;
  fields: Record<string, string>;
  at: Date;
  sessionId?: string;
  link?: string;
}

function render(parts: AlertParts): RenderedAlert {
  const timestamp = formatTimestamp(parts.at);
  const text = [
    parts.headline,
    '',
    ...parts.rows.map(([label, value]) => `${label}: ${value}`),
    ...(parts.link ? ['', `Open the session: ${parts.link}`] : []),
    '',
  ].join('\n');
  const tableRows = parts.rows
    .map(
      ([label, value]) =>
        `<tr><th align="left" style="padding:2px 12px 2px 0">${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`,
    )
    .join('');
  const linkHtml = parts.link
    ? `<p><a href="${escapeHtml(parts.link)}">Open the session</a> (${escapeHtml(parts.link)})</p>`
    : '';
  const html =
    `<!doctype html><html><body style="font-family:sans-serif">` +
    `<p>${escapeHtml(parts.headline)}</p><table>${tableRows}</table>${linkHtml}</body></html>`;
  return {
    event: parts.event,
    subject: singleLine(parts.subject),
    text,
    html,
    sms: singleLine(parts.sms),
    summary: singleLine(parts.summary),
    fields: { event: parts.event, time: timestamp, ...parts.fields },
    timestamp,
    sessionId: parts.sessionId,
    link: parts.link,
  };
}

/** `panelUrl`: ADMIN_PANEL_URL, or else the caller's base, or else none (relative link). */
export function renderHelpRequest(alert: HelpRequestAlert, at: Date, panelUrl?: string): RenderedAlert {
  const link = sessionLink(panelUrl ?? alert.adminPanelBaseUrl, alert.sessionId);
  const lastMessage = excerpt(alert.lastUserMessage);
  const sessionName = alert.sessionName ? excerpt(alert.sessionName) : '';
  const timestamp = formatTimestamp(at);
  return render({
    event: 'help_requested',
    at,
    sessionId: alert.sessionId,
    link,
    subject: `Help Request - User ${alert.userId}`,
    headline: `User ${alert.userId} has asked for a human in session ${alert.sessionId}.`,
    rows: [
      ['User', alert.userId],
      ['Session', alert.sessionId],
      ['Session name', sessionName || NOT_GIVEN],
      ['Time', timestamp],
      ['Affected users', String(HELP_REQUEST_AFFECTED_USERS)],
      ['Last user message', lastMessage || NOT_GIVEN],
    ],
    sms: `Help Request - User ${alert.userId} needs assistance. Session: ${alert.sessionId}`,
    summary: `Help Request - User ${alert.userId} needs assistance. Session: ${alert.sessionId}`,
    fields: {
      user_id: alert.userId,
      session_id: alert.sessionId,
      ...(sessionName ? { session_name: sessionName } : {}),
      ...(lastMessage ? { last_user_message: lastMessage } : {}),
      affected_users: String(HELP_REQUEST_AFFECTED_USERS),
      admin_url: link,
    },
  });
}

export function renderLlmFailing(alert: LlmFailingAlert, at: Date): RenderedAlert {
  const window = formatDuration(alert.windowMs ?? DEFAULT_LLM_FAILURE_WINDOW_MS);
  const provider = alert.providerName ? `${alert.providerName} (${alert.providerId})` : alert.providerId;
  const ratio = formatPercent(alert.failureRatio);
  const timestamp = formatTimestamp(at);
  const facts = `${alert.consecutiveFailures} consecutive failures, ${ratio} failed over ${window}. Affected users: ${alert.affectedUsers}. Time: ${timestamp}`;
  return render({
    event: 'llm_failing',
    at,
    subject: `LLM Provider Failing - ${alert.providerId}`,
    headline: `LLM provider ${provider} is failing repeatedly.`,
    rows: [
      ['Provider', provider],
      ['Consecutive failures', String(alert.consecutiveFailures)],
      [`Failed requests (last ${window})`, ratio],
      ['Affected users', String(alert.affectedUsers)],
      ['Time', timestamp],
    ],
    sms: `LLM provider ${alert.providerId} failing: ${facts}`,
    summary: `LLM provider ${provider} failing: ${facts}`,
    fields: {
      provider_id: alert.providerId,
      consecutive_failures: String(alert.consecutiveFailures),
      failure_ratio: String(alert.failureRatio),
      window: window,
      affected_users: String(alert.affectedUsers),
    },
  });
}

export function renderDatabaseUnreachable(alert: DatabaseUnreachableAlert, at: Date): RenderedAlert {
  const since = formatTimestamp(alert.since);
  const downFor = formatDuration(at.getTime() - alert.since.getTime());
  const timestamp = formatTimestamp(at);
  const facts = `since ${since} (${downFor}). Affected users: ${alert.affectedUsers}. Time: ${timestamp}`;
  return render({
    event: 'database_unreachable',
    at,
    subject: 'MongoDB Unreachable',
    headline: 'MongoDB is unreachable. Chat keeps streaming; writes are queued until it recovers.',
    rows: [
      ['Unreachable since', since],
      ['Down for', downFor],
      ['Affected users', String(alert.affectedUsers)],
      ['Time', timestamp],
    ],
    sms: `MongoDB unreachable ${facts}`,
    summary: `MongoDB unreachable ${facts}`,
    fields: { since, down_for: downFor, affected_users: String(alert.affectedUsers) },
  });
}

export function renderDatabaseRecovered(alert: DatabaseRecoveredAlert, at: Date): RenderedAlert {
  const downFor = formatDuration(alert.downForMs);
  const timestamp = formatTimestamp(at);
  const facts = `after ${downFor}. Affected users: ${alert.affectedUsers}. Time: ${timestamp}`;
  return render({
    event: 'database_recovered',
    at,
    subject: 'MongoDB Recovered',
    headline: 'MongoDB is reachable again; queued writes are being flushed.',
    rows: [
      ['Was down for', downFor],
      ['Affected users', String(alert.affectedUsers)],
      ['Time', timestamp],
    ],
    sms: `MongoDB recovered ${facts}`,
    summary: `MongoDB recovered ${facts}`,
    fields: { down_for: downFor, affected_users: String(alert.affectedUsers) },
  });
}

export function renderRateLimitSpike(alert: RateLimitSpikeAlert, at: Date): RenderedAlert {
  const window = formatDuration(alert.windowMs);
  const timestamp = formatTimestamp(at);
  const facts = `${alert.blockedCount} requests blocked in ${window}. Affected users: ${alert.affectedUsers}. Time: ${timestamp}`;
  return render({
    event: 'rate_limit_spike',
    at,
    subject: `Abnormal Traffic - ${alert.limiter} rate limit`,
    headline: `Rate-limit rejections are spiking on the ${alert.limiter} limiter.`,
    rows: [
      ['Limiter', alert.limiter],
      [`Blocked requests (last ${window})`, String(alert.blockedCount)],
      ['Affected users', String(alert.affectedUsers)],
      ['Time', timestamp],
    ],
    sms: `Abnormal traffic on ${alert.limiter} limiter: ${facts}`,
    summary: `Abnormal traffic on ${alert.limiter} limiter: ${facts}`,
    fields: {
      limiter: alert.limiter,
      blocked_count: String(alert.blockedCount),
      window,
      affected_users: String(alert.affectedUsers),
    },
  });
}
