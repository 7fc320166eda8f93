import { randomBytes } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Test, TestingModule } from '@nestjs/testing';
import Redis from 'ioredis';
import { SMTPServer } from 'smtp-server';
import {
  AppConfigModule,
  Environment,
  InProcessRateLimiter,
  LifecycleModule,
  loadConfig,
  RateLimiter,
} from '@chatbox/common';
import {
  DashboardAlert,
  NOTIFICATION_TIMEOUTS,
  NotificationModule,
  NotificationService,
  NotificationTimeouts,
} from '@chatbox/notification';
import { RedisLinkModule } from '@chatbox/session';
import { freePort } from '@chatbox/storage';

/** Short enough to keep the suite fast, long enough for a loaded 2-core CI box. */
const FAST_TIMEOUTS: NotificationTimeouts = { smtpConnectMs: 1_000, smtpSocketMs: 2_000, httpMs: 400 };
const ADMIN_EMAILS = ['ops@example.com', 'lead@example.com'];
const ADMIN_PHONES = ['+15550000001', '+15550000002'];
const SID = 'AC0123456789';
const AUTH_TOKEN = 'twilio-auth-token-for-tests';
const FROM_NUMBER = '+15559999999';
const PANEL_URL = 'https://admin.example.com/chatbox/admin';
const HOSTILE_MESSAGE = 'Please help <script>alert("x")</script> with order #12 & invoice';
const AT = new Date('2025-06-01T10:20:30Z');
const AT_TEXT = '2025-06-01T10:20:30Z';

interface ReceivedMail {
  rcptTo: string[];
  subject: string;
  text: string;
  html: string;
}

interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** Just enough MIME for nodemailer's multipart/alternative output (quoted-printable or base64). */
function parseMail(raw: string): Omit<ReceivedMail, 'rcptTo'> {
  const [headerBlock, ...bodyBlocks] = raw.split(/\r?\n\r?\n/);
  const headers = headerBlock.replace(/\r?\n[ \t]+/g, ' ');
  const header = (name: string, block: string) =>
    new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(block.replace(/\r?\n[ \t]+/g, ' '))?.[1]?.trim() ?? '';
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(headers)?.[1];
  if (!boundary) throw new Error('expected a multipart message');
  const body = bodyBlocks.join('\r\n\r\n');
  const parts = body
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((part) => {
      const [partHeaders, ...partBody] = part.replace(/^\r?\n/, '').split(/\r?\n\r?\n/);
      const encoding = header('Content-Transfer-Encoding', partHeaders).toLowerCase();
      const content = partBody.join('\r\n\r\n').replace(/\r?\n$/, '');
      const decoded =
        encoding === 'base64'
          ? Buffer.from(content, 'base64').toString('utf8')
          : encoding === 'quoted-printable'
            ? Buffer.from(
                content
                  .replace(/=\r?\n/g, '')
                  .replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
                'latin1',
              ).toString('utf8')
            : content;
      return { type: header('Content-Type', partHeaders), decoded };
    });
  return {
    subject: header('Subject', headers),
    text: parts.find((part) => part.type.startsWith('text/plain'))?.decoded ?? '',
    html: parts.find((part) => part.type.startsWith('text/html'))?.decoded ?? '',
  };
}

function startSmtpServer(mails: ReceivedMail[]): Promise<{ port: number; close: () => Promise<void> }> {
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        mails.push({
          rcptTo: session.envelope.rcptTo.map((recipient) => recipient.address),
          ...parseMail(Buffer.concat(chunks).toString('utf8')),
        });
        callback();
      });
    },
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.server.address() as AddressInfo;
      resolve({ port, close: () => new Promise((done) => server.close(() => done())) });
    });
  });
}

type Behaviour = 'ok' | 'fail' | 'hang';

/** Records every request; answers per the current behaviour (`hang` never answers). */
function startHttpServer(
  requests: ReceivedRequest[],
  behaviour: () => Behaviour,
  okStatus: number,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const mode = behaviour();
      if (mode === 'hang') return;
      res.writeHead(mode === 'ok' ? okStatus : 500, { 'content-type': 'application/json' });
      res.end(JSON.stringify(mode === 'ok' ? { sid: 'SM1' } : { code: 20500, message: 'Internal' }));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

interface Harness {
  moduleRef: TestingModule;
  service: NotificationService;
  dashboard: DashboardAlert[];
}

async function buildNotifications(env: Environment, limiter?: InProcessRateLimiter): Promise<Harness> {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'warn', ...env });
  // As in the app: the rate limiter (and with REDIS_URL the Redis link) comes from RedisLinkModule.
  let builder = Test.createTestingModule({
    imports: [AppConfigModule.forRoot(config), LifecycleModule, RedisLinkModule, NotificationModule],
  })
    .overrideProvider(NOTIFICATION_TIMEOUTS)
    .useValue(FAST_TIMEOUTS);
  if (limiter) builder = builder.overrideProvider(RateLimiter).useValue(limiter);
  const moduleRef = await builder.compile();
  moduleRef.useLogger(false);
  await moduleRef.init();
  const service = moduleRef.get(NotificationService);
  const dashboard: DashboardAlert[] = [];
  service.dashboardEvents$.subscribe((event) => dashboard.push(event));
  return { moduleRef, service, dashboard };
}

describe('notifications over real SMTP, a Twilio stand-in and a webhook receiver', () => {
  const mails: ReceivedMail[] = [];
  const smsRequests: ReceivedRequest[] = [];
  const webhookRequests: ReceivedRequest[] = [];
  let smsBehaviour: Behaviour = 'ok';
  let webhookBehaviour: Behaviour = 'ok';
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  let twilio: Awaited<ReturnType<typeof startHttpServer>>;
  let webhook: Awaited<ReturnType<typeof startHttpServer>>;
  const harnesses: Harness[] = [];

  const fullEnv = (): Environment => ({
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(smtp.port),
    SMTP_SECURE: 'false',
    EMAIL_FROM: 'chatbox@example.com',
    ADMIN_EMAILS: ADMIN_EMAILS.join(', '),
    ADMIN_PHONES: ADMIN_PHONES.join(','),
    SMS_ACCOUNT_SID: SID,
    SMS_AUTH_TOKEN: AUTH_TOKEN,
    SMS_FROM_NUMBER: FROM_NUMBER,
    SMS_API_BASE: twilio.url,
    NOTIFY_WEBHOOK_URL: `${webhook.url}/hooks/alerts`,
    ADMIN_PANEL_URL: PANEL_URL,
    NOTIFY_RATE_LIMIT: '2',
    NOTIFY_RATE_WINDOW: '5m',
  });

  async function harness(env: Environment = {}, limiter?: InProcessRateLimiter) {
    const built = await buildNotifications({ ...fullEnv(), ...env }, limiter);
    harnesses.push(built);
    return built;
  }

  beforeAll(async () => {
    smtp = await startSmtpServer(mails);
    twilio = await startHttpServer(smsRequests, () => smsBehaviour, 201);
    webhook = await startHttpServer(webhookRequests, () => webhookBehaviour, 200);
  });

  beforeEach(() => {
    mails.length = 0;
    smsRequests.length = 0;
    webhookRequests.length = 0;
    smsBehaviour = 'ok';
    webhookBehaviour = 'ok';
  });

  afterEach(async () => {
    await Promise.all(harnesses.splice(0).map((built) => built.moduleRef.close()));
  });

  afterAll(async () => {
    await Promise.all([smtp?.close(), twilio?.close(), webhook?.close()]);
  });

  describe('help request', () => {
    let outcome: Awaited<ReturnType<NotificationService['helpRequested']>>;
    let built: Harness;

    beforeEach(async () => {
      built = await harness();
      outcome = await built.service.helpRequested({
        userId: 'user-42',
        sessionId: 'sess-abc',
        sessionName: 'Order problem',
        lastUserMessage: HOSTILE_MESSAGE,
        at: AT,
      });
    });

    it('reports one delivery per recipient on every channel', () => {
      expect(outcome).toEqual({
        event: 'help_requested',
        key: 'help:sess-abc',
        status: 'dispatched',
        channels: {
          email: { sent: 2, failed: 0 },
          sms: { sent: 2, failed: 0 },
          webhook: { sent: 1, failed: 0 },
          dashboard: { sent: 1, failed: 0 },
        },
      });
      expect(built.service.counters().channels.email).toEqual({ sent: 2, failed: 0 });
    });

    it('sends exactly one e-mail per admin address with the exact subject', () => {
      expect(mails.map((mail) => mail.rcptTo)).toEqual(expect.arrayContaining(ADMIN_EMAILS.map((a) => [a])));
      expect(mails).toHaveLength(ADMIN_EMAILS.length);
      for (const mail of mails) expect(mail.subject).toBe('Help Request - User user-42');
    });

    it('puts the facts, the excerpt and the session link in the text body', () => {
      const { text } = mails[0];
      expect(text).toContain('User: user-42');
      expect(text).toContain('Session: sess-abc');
      expect(text).toContain('Session name: Order problem');
      expect(text).toContain(`Time: ${AT_TEXT}`);
      expect(text).toContain('Affected users: 1');
      expect(text).toContain(`Last user message: ${HOSTILE_MESSAGE}`);
      expect(text).toContain(`${PANEL_URL}?session_id=sess-abc`);
    });

    it('HTML-escapes the hostile excerpt in the HTML body and still links the session', () => {
      const { html } = mails[0];
      expect(html).not.toContain('<script>');
      expect(html).toContain(
        'Please help &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; with order #12 &amp; invoice',
      );
      expect(html).toContain(`href="${PANEL_URL}?session_id=sess-abc"`);
      expect(html).toContain('user-42');
      expect(html).toContain(AT_TEXT);
    });

    it('sends one SMS per admin phone to the Twilio API with Basic auth and form fields', () => {
      expect(smsRequests).toHaveLength(ADMIN_PHONES.length);
      const expectedAuth = `Basic ${Buffer.from(`${SID}:${AUTH_TOKEN}`).toString('base64')}`;
      for (const request of smsRequests) {
        expect(request.method).toBe('POST');
        expect(request.url).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`);
        expect(request.headers.authorization).toBe(expectedAuth);
        expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded');
        const form = new URLSearchParams(request.body);
        expect(form.get('From')).toBe(FROM_NUMBER);
        expect(form.get('Body')).toBe('Help Request - User user-42 needs assistance. Session: sess-abc');
      }
      expect(smsRequests.map((request) => new URLSearchParams(request.body).get('To')).sort()).toEqual(
        [...ADMIN_PHONES].sort(),
      );
    });

    it('posts one JSON webhook with a Slack-compatible text and structured fields', () => {
      expect(webhookRequests).toHaveLength(1);
      const [request] = webhookRequests;
      expect(request.url).toBe('/hooks/alerts');
      expect(request.headers['content-type']).toBe('application/json');
      const payload = JSON.parse(request.body);
      expect(payload.text).toContain('Help Request - User user-42 needs assistance. Session: sess-abc');
      expect(payload.text).toContain(`${PANEL_URL}?session_id=sess-abc`);
      expect(payload).toMatchObject({
        event: 'help_requested',
        timestamp: AT_TEXT,
        session_id: 'sess-abc',
        fields: { user_id: 'user-42', session_id: 'sess-abc', affected_users: '1' },
      });
    });

    it('emits one dashboard event with metadata.event = help_requested', () => {
      expect(built.dashboard).toEqual([
        expect.objectContaining({
          event: 'help_requested',
          sessionId: 'sess-abc',
          timestamp: AT_TEXT,
          metadata: expect.objectContaining({ event: 'help_requested', user_id: 'user-42' }),
        }),
      ]);
      for (const value of Object.values(built.dashboard[0].metadata)) expect(typeof value).toBe('string');
    });

    it('does not re-alert for the same session within the window, but does for another session', async () => {
      mails.length = 0;
      smsRequests.length = 0;
      webhookRequests.length = 0;
      const repeat = await built.service.helpRequested({ userId: 'user-42', sessionId: 'sess-abc', at: AT });
      expect(repeat).toMatchObject({ status: 'suppressed', channels: {} });
      expect([mails.length, smsRequests.length, webhookRequests.length, built.dashboard.length]).toEqual([
        0, 0, 0, 1,
      ]);
      expect(built.service.counters().suppressed).toBe(1);

      const other = await built.service.helpRequested({ userId: 'user-7', sessionId: 'sess-other', at: AT });
      expect(other.status).toBe('dispatched');
      expect(mails.map((mail) => mail.subject)).toEqual([
        'Help Request - User user-7',
        'Help Request - User user-7',
      ]);
      expect(smsRequests).toHaveLength(2);
      expect(webhookRequests).toHaveLength(1);
      expect(built.dashboard).toHaveLength(2);
    });
  });

  it('alerts the same session again once the window has passed (fake clock)', async () => {
    let now = AT.getTime();
    const { service } = await harness({}, new InProcessRateLimiter(() => now));
    const help = { userId: 'u1', sessionId: 's1' };
    expect((await service.helpRequested(help)).status).toBe('dispatched');
    now += 5 * 60_000 - 1;
    expect((await service.helpRequested(help)).status).toBe('suppressed');
    now += 1;
    expect((await service.helpRequested(help)).status).toBe('dispatched');
    expect(mails).toHaveLength(2 * ADMIN_EMAILS.length);
  });

  it('uses the caller base URL when ADMIN_PANEL_URL is unset', async () => {
    const { service } = await harness({ ADMIN_PANEL_URL: '' });
    await service.helpRequested({
      userId: 'u1',
      sessionId: 's-base',
      adminPanelBaseUrl: 'https://chat.example.org/chatbox/admin',
    });
    expect(mails[0].text).toContain('https://chat.example.org/chatbox/admin?session_id=s-base');
  });

  it('keeps SMS and webhook going when the SMTP server is down, and counts the e-mail failures', async () => {
    const closedPort = await freePort();
    const { service } = await harness({ SMTP_PORT: String(closedPort) });
    const observed: string[] = [];
    service.addObserver((channel, result) => observed.push(`${channel}:${result}`));

    const outcome = await service.helpRequested({ userId: 'u1', sessionId: 's-smtp-down' });

    expect(outcome.channels).toEqual({
      email: { sent: 0, failed: 2 },
      sms: { sent: 2, failed: 0 },
      webhook: { sent: 1, failed: 0 },
      dashboard: { sent: 1, failed: 0 },
    });
    expect(mails).toHaveLength(0);
    expect(smsRequests).toHaveLength(2);
    expect(webhookRequests).toHaveLength(1);
    expect(service.counters().channels.email).toEqual({ sent: 0, failed: 2 });
    expect(observed.filter((entry) => entry === 'email:failed')).toHaveLength(2);
    expect(observed).toEqual(expect.arrayContaining(['sms:sent', 'webhook:sent', 'dashboard:sent']));
  });

  it('isolates an SMS API answering 500 and a hanging webhook; the caller is never held up', async () => {
    smsBehaviour = 'fail';
    webhookBehaviour = 'hang';
    const { service, dashboard } = await harness();

    const started = performance.now();
    const pending = service.helpRequested({ userId: 'u1', sessionId: 's-isolated' });
    const callReturnedAfterMs = performance.now() - started;
    expect(callReturnedAfterMs).toBeLessThan(50);

    // Dashboards hear about it while the webhook is still hanging.
    await new Promise((resolve) => setTimeout(resolve, FAST_TIMEOUTS.httpMs / 4));
    expect(dashboard).toHaveLength(1);

    const outcome = await pending;
    const settledAfterMs = performance.now() - started;
    expect(outcome.channels).toEqual({
      email: { sent: 2, failed: 0 },
      sms: { sent: 0, failed: 2 },
      webhook: { sent: 0, failed: 1 },
      dashboard: { sent: 1, failed: 0 },
    });
    expect(settledAfterMs).toBeGreaterThanOrEqual(FAST_TIMEOUTS.httpMs - 50);
    expect(settledAfterMs).toBeLessThan(FAST_TIMEOUTS.httpMs * 5);
    expect(mails).toHaveLength(2);
    expect(smsRequests).toHaveLength(2);
    expect(webhookRequests).toHaveLength(1);
    expect(service.counters().channels).toMatchObject({
      sms: { sent: 0, failed: 2 },
      webhook: { sent: 0, failed: 1 },
    });
  });

  describe('operational alerts', () => {
    it('LLM failing names the provider, affected users and time, and is limited per provider', async () => {
      const { service, dashboard } = await harness();
      const alert = {
        providerId: 'openai-main',
        consecutiveFailures: 6,
        failureRatio: 0.5,
        affectedUsers: 14,
        at: AT,
      };

      const first = await service.llmFailing(alert);
      expect(first.key).toBe('llm:openai-main');
      expect(mails.map((mail) => mail.subject)).toEqual([
        'LLM Provider Failing - openai-main',
        'LLM Provider Failing - openai-main',
      ]);
      expect(mails[0].text).toContain('Affected users: 14');
      expect(mails[0].text).toContain(`Time: ${AT_TEXT}`);
      const sms = new URLSearchParams(smsRequests[0].body).get('Body');
      expect(sms).toContain('6 consecutive failures, 50% failed over 5m');
      expect(sms).toContain('Affected users: 14');
      expect(JSON.parse(webhookRequests[0].body).text).toContain(AT_TEXT);
      expect(dashboard[0].metadata).toMatchObject({ event: 'llm_failing', affected_users: '14' });

      // NOTIFY_RATE_LIMIT=2 per provider.
      expect((await service.llmFailing(alert)).status).toBe('dispatched');
      expect((await service.llmFailing(alert)).status).toBe('suppressed');
      expect((await service.llmFailing({ ...alert, providerId: 'anthropic' })).status).toBe('dispatched');
    });

    it('MongoDB unreachable and recovered have their own templates and budgets', async () => {
      const { service, dashboard } = await harness();
      const since = new Date(AT.getTime() - 40_000);
      for (let i = 0; i < 3; i++) await service.databaseUnreachable({ since, affectedUsers: 9, at: AT });
      const recovered = await service.databaseRecovered({ downForMs: 95_000, affectedUsers: 9, at: AT });
      expect(recovered.status).toBe('dispatched');

      const subjects = mails.map((mail) => mail.subject);
      expect(subjects.filter((subject) => subject === 'MongoDB Unreachable')).toHaveLength(2 * 2);
      expect(subjects.filter((subject) => subject === 'MongoDB Recovered')).toHaveLength(2);
      const down = mails.find((mail) => mail.subject === 'MongoDB Unreachable') as ReceivedMail;
      expect(down.text).toContain('Down for: 40s');
      expect(down.text).toContain('Affected users: 9');
      expect(down.text).toContain(`Time: ${AT_TEXT}`);
      const up = mails.find((mail) => mail.subject === 'MongoDB Recovered') as ReceivedMail;
      expect(up.text).toContain('Was down for: 1m 35s');
      expect(up.html).toContain('Affected users');
      expect(dashboard.map((event) => event.event)).toEqual([
        'database_unreachable',
        'database_unreachable',
        'database_recovered',
      ]);
    });

    it('rate-limit spike names the limiter, blocked count, affected users and time', async () => {
      const { service } = await harness();
      await service.rateLimitSpike({
        limiter: 'user',
        blockedCount: 512,
        affectedUsers: 4,
        windowMs: 60_000,
        at: AT,
      });
      expect(mails[0].subject).toBe('Abnormal Traffic - user rate limit');
      expect(mails[0].text).toContain('Blocked requests (last 1m): 512');
      expect(mails[0].text).toContain('Affected users: 4');
      const sms = new URLSearchParams(smsRequests[0].body).get('Body');
      expect(sms).toBe(
        `Abnormal traffic on user limiter: 512 requests blocked in 1m. Affected users: 4. Time: ${AT_TEXT}`,
      );
      expect(JSON.parse(webhookRequests[0].body)).toMatchObject({
        event: 'rate_limit_spike',
        fields: { limiter: 'user', blocked_count: '512', affected_users: '4', time: AT_TEXT },
      });
    });
  });

  it('shares the help-request budget between instances through REDIS_URL', async () => {
    const sessionId = `s-redis-${randomBytes(6).toString('hex')}`;
    const keyPrefix = `test:notify:${randomBytes(6).toString('hex')}:`;
    const redisEnv = {
      REDIS_URL: process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: keyPrefix,
    };
    const instanceA = await harness(redisEnv);
    const instanceB = await harness(redisEnv);
    try {
      expect((await instanceA.service.helpRequested({ userId: 'u1', sessionId })).status).toBe('dispatched');
      expect((await instanceB.service.helpRequested({ userId: 'u1', sessionId })).status).toBe('suppressed');
      expect(mails).toHaveLength(ADMIN_EMAILS.length);
    } finally {
      const redis = new Redis(redisEnv.REDIS_URL);
      await redis.del(`${keyPrefix}rate:notify:help:${sessionId}`);
      await redis.quit();
    }
  });

  it('switches channels off when they are not configured', async () => {
    const { service, dashboard } = await harness({
      SMTP_HOST: '',
      SMS_ACCOUNT_SID: '',
      SMS_AUTH_TOKEN: '',
      NOTIFY_WEBHOOK_URL: '',
    });
    expect(service.enabledChannels()).toEqual(['dashboard']);
    const outcome = await service.helpRequested({ userId: 'u1', sessionId: 's-off' });
    expect(outcome.channels).toEqual({ dashboard: { sent: 1, failed: 0 } });
    expect([mails.length, smsRequests.length, webhookRequests.length, dashboard.length]).toEqual([
      0, 0, 0, 1,
    ]);
  });

  it('keeps SMS off without a sender number, and e-mail off without admin addresses', async () => {
    const { service } = await harness({ SMS_FROM_NUMBER: '', ADMIN_EMAILS: '' });
    expect(service.enabledChannels()).toEqual(['webhook', 'dashboard']);
  });
});
