import { createTransport } from 'nodemailer';
import type { SmsConfig, SmtpConfig } from '@chatbox/common';
import type { NotificationTimeouts } from './notification.constants';
import type { NotificationChannel, RenderedAlert } from './notification.types';

/** One message to one recipient; `recipient` is a log-safe label, never an address or number. */
export interface Delivery {
  recipient: string;
  send(): Promise<void>;
}

/** A network channel: one delivery per recipient, each failing on its own. */
export interface ChannelSender {
  readonly channel: Exclude<NotificationChannel, 'dashboard'>;
  /** Hard upper bound for one delivery, on top of the transport's own timeouts. */
  readonly deadlineMs: number;
  deliveries(alert: RenderedAlert): Delivery[];
  close(): void;
}

export class EmailSender implements ChannelSender {
  readonly channel = 'email' as const;
  readonly deadlineMs: number;
  private readonly transporter;

  constructor(
    private readonly smtp: SmtpConfig,
    private readonly recipients: string[],
    timeouts: NotificationTimeouts,
  ) {
    // Opportunistic STARTTLS (nodemailer's default) when not `secure`: operators choose via SMTP_SECURE.
    this.transporter = createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      auth: smtp.user ? { user: smtp.user, pass: smtp.pass ?? '' } : undefined,
      connectionTimeout: timeouts.smtpConnectMs,
      greetingTimeout: timeouts.smtpConnectMs,
      dnsTimeout: timeouts.smtpConnectMs,
      socketTimeout: timeouts.smtpSocketMs,
    });
    this.deadlineMs = timeouts.smtpConnectMs + timeouts.smtpSocketMs;
  }

  deliveries(alert: RenderedAlert): Delivery[] {
    // One message per admin, so addresses are not disclosed to each other and one bad address
    // (rejected RCPT) does not sink the others.
    return this.recipients.map((to, index) => ({
      recipient: `admin e-mail #${index + 1}`,
      send: async () => {
        await this.transporter.sendMail({
          from: this.smtp.from,
          to,
          subject: alert.subject,
          text: alert.text,
          html: alert.html,
        });
      },
    }));
  }

  close(): void {
    this.transporter.close();
  }
}

/** Twilio Messages API: form-encoded POST, HTTP Basic with the account SID and auth token. */
export class SmsSender implements ChannelSender {
  readonly channel = 'sms' as const;
  readonly deadlineMs: number;
  private readonly endpoint: string;
  private readonly authorization: string;
  private readonly from: string;

  constructor(
    sms: SmsConfig & { fromNumber: string },
    private readonly phones: string[],
    timeouts: NotificationTimeouts,
  ) {
    this.endpoint = `${sms.apiBase}/2010-04-01/Accounts/${encodeURIComponent(sms.accountSid)}/Messages.json`;
    this.authorization = `Basic ${Buffer.from(`${sms.accountSid}:${sms.authToken}`).toString('base64')}`;
    this.from = sms.fromNumber;
    this.deadlineMs = timeouts.httpMs;
  }

  deliveries(alert: RenderedAlert): Delivery[] {
    return this.phones.map((to, index) => ({
      recipient: `admin phone #${index + 1}`,
      send: () =>
        postOrThrow(
          this.endpoint,
          {
            method: 'POST',
            headers: {
              authorization: this.authorization,
              'content-type': 'application/x-www-form-urlencoded',
              accept: 'application/json',
            },
            body: new URLSearchParams({ To: to, From: this.from, Body: alert.sms }).toString(),
          },
          this.deadlineMs,
        ),
    }));
  }

  close(): void {}
}

/** JSON POST with a Slack-compatible `text`, plus the structured fields for other consumers. */
export class WebhookSender implements ChannelSender {
  readonly channel = 'webhook' as const;
  readonly deadlineMs: number;

  constructor(
    private readonly url: string,
    timeouts: NotificationTimeouts,
  ) {
    this.deadlineMs = timeouts.httpMs;
  }

  deliveries(alert: RenderedAlert): Delivery[] {
    const text = alert.link?.startsWith('http') ? `${alert.summary}\n${alert.link}` : alert.summary;
    const payload = {
      text,
      event: alert.event,
      timestamp: alert.timestamp,
      subject: alert.subject,
      ...(alert.sessionId ? { session_id: alert.sessionId } : {}),
      fields: alert.fields,
    };
    return [
      {
        recipient: 'webhook',
        send: () =>
          postOrThrow(
            this.url,
            {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(payload),
            },
            this.deadlineMs,
          ),
      },
    ];
  }

  close(): void {}
}

async function postOrThrow(url: string, init: RequestInit, timeoutMs: number): Promise<void> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  // The body is not needed (and may echo the message); drain it so the connection is reused.
  await response.arrayBuffer().catch(() => undefined);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
}
