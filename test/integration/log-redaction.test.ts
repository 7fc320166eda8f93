/**
 * Issue 13 item 9: credentials in URLs never reach the log. redactUrl() has unit tests
 * (apps/chatbox/src/logging.spec.ts); this proves the real log lines of a running app use it: the
 * request line pino-http writes for every request, and the line the HTTP error filter writes for a
 * 500. Share tokens (`/shared/<token>`, `?share_token=`), file link signatures (`signature=`) and
 * tokens (`token=`) appear as `[redacted]`.
 */
import { SessionService } from '@chatbox/session';
import { startTestApp, TestApp } from '../support/app';
import { PNG, uploadFile } from '../support/files-suite';
import { userToken } from '../support/tokens';
import { until } from '../support/until';
import { TestClient } from '../support/ws-client';

interface LogLine {
  level: number;
  msg: string;
  context?: string;
  correlationId?: string;
  req?: { url?: string };
  path?: string;
}

describe('log lines redact credentials in URLs', () => {
  let t: TestApp;
  const lines: string[] = [];
  const owner = 'log-owner';
  let shareToken: string;
  let signedFileUrl: string;

  beforeAll(async () => {
    t = await startTestApp(
      { LOG_LEVEL: 'info' },
      {},
      { logTo: { write: (line: string) => lines.push(line) } },
    );
    const client = await TestClient.connect(t.wsUrl, { token: userToken(owner) });
    client.send({ type: 'user_message', content: 'Something to share.' });
    const { done } = await client.waitForReply();
    await client.close();
    const share = await fetch(`${t.baseUrl}/sessions/${done.session_id}/share`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${userToken(owner)}` },
    });
    shareToken = ((await share.json()) as { share_token: string }).share_token;
    const upload = await uploadFile(t, userToken(owner), { bytes: PNG, name: 'logged.png' });
    signedFileUrl = upload.body.file_url;
  });
  afterAll(async () => t?.close());

  /** The log lines of `request`, up to its own request line (written once the response finished). */
  async function logOf(request: () => Promise<Response>): Promise<{ status: number; logged: LogLine[] }> {
    const from = lines.length;
    const response = await request();
    await response.arrayBuffer();
    const id = response.headers.get('x-request-id');
    const parsed = () => lines.slice(from).map((line) => JSON.parse(line) as LogLine);
    await until(() => parsed().some((line) => line.correlationId === id && line.req?.url !== undefined));
    return { status: response.status, logged: parsed() };
  }

  function expectRedacted(logged: LogLine[], secrets: string[]): void {
    const text = JSON.stringify(logged);
    for (const secret of secrets) expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  }

  it('GET /shared/<token>: the request line shows /shared/[redacted]', async () => {
    const { status, logged } = await logOf(() => fetch(`${t.baseUrl}/shared/${shareToken}`));
    expect(status).toBe(200);
    expectRedacted(logged, [shareToken]);
    expect(logged.map((line) => line.req?.url)).toContain('/chatbox/shared/[redacted]');
  });

  it('?share_token=, signature= and token= in a query are redacted', async () => {
    const jwt = userToken(owner);
    const { logged } = await logOf(() => fetch(`${t.baseUrl}/chat?share_token=${shareToken}&token=${jwt}`));
    expectRedacted(logged, [shareToken, jwt]);
    expect(logged.map((line) => line.req?.url)).toContain(
      '/chatbox/chat?share_token=[redacted]&token=[redacted]',
    );

    const signature = new URL(signedFileUrl, 'http://x').searchParams.get('signature')!;
    const file = await logOf(() => fetch(`${new URL(t.baseUrl).origin}${signedFileUrl}`));
    expect(file.status).toBe(200);
    expectRedacted(file.logged, [signature]);
  });

  it('a 500 on /shared/<token>: the error filter line and the request line are both redacted', async () => {
    // The one fault injected: the service fails as an unreachable database would; the filter and
    // the logger are the app's own.
    const spy = jest
      .spyOn(t.app.get(SessionService), 'sharedView')
      .mockRejectedValueOnce(new Error('the database went away'));
    const secret = `${shareToken}`;
    const signature = 'sig-0123456789';
    const { status, logged } = await logOf(() =>
      fetch(`${t.baseUrl}/shared/${secret}?signature=${signature}&token=${userToken(owner)}`),
    );
    spy.mockRestore();
    expect(status).toBe(500);
    const failure = logged.find((line) => line.context === 'HttpError');
    expect(failure).toMatchObject({ msg: 'request failed', path: '/chatbox/shared/[redacted]' });
    expectRedacted(logged, [secret, signature, userToken(owner)]);
  });
});
