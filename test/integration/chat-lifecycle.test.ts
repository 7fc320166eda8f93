import { createServer, Server } from 'node:http';
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { startTestApp, TestApp } from '../support/app';
import { databaseTempDir, embeddedDatabase } from '../support/embedded-database';
import { adminToken, userToken } from '../support/tokens';
import { TestClient } from '../support/ws-client';

const clients: TestClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

async function connect(t: TestApp, token: string, sessionId?: string): Promise<TestClient> {
  const client = await TestClient.connect(t.wsUrl, { token, sessionId });
  clients.push(client);
  await client.waitForType('connection_status');
  return client;
}

async function eventually<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A local webhook receiver: alerts arrive here as JSON. */
async function webhookReceiver(): Promise<{ url: string; alerts: any[]; close: () => Promise<void> }> {
  const alerts: any[] = [];
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      alerts.push(JSON.parse(body));
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    alerts,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('session lifecycle over the socket', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(
      { RECONNECT_TIMEOUT: '1s', SESSION_CLEANUP_INTERVAL: '200ms' },
      { messagesPerSession: 4, adminGoneGraceMs: 300 },
    );
  });
  afterAll(async () => t?.close());

  it('ends an idle session with no socket after RECONNECT_TIMEOUT, persisting endTs and dur', async () => {
    const kept = await connect(t, userToken('stayer'));
    kept.send({ type: 'user_message', content: 'I stay connected' });
    const stay = await kept.waitForReply();
    // Idle since after the connected session: the sweep that ends it looked at the connected one
    // first (sweeps go from the longest idle), and left it alone.
    const client = await connect(t, userToken('idler'));
    client.send({ type: 'user_message', content: 'bye soon' });
    const { done } = await client.waitForReply();
    await client.close();
    const raw = await eventually(
      () => t.db.collection('sessions').findOne({ _id: done.session_id as never }),
      (doc) => doc?.endTs !== undefined,
    );
    expect(typeof raw!.dur).toBe('number');
    const still = await t.stored(stay.done.session_id);
    expect(still).not.toHaveProperty('endTs');
  });

  it('relays typing indicators to the other sockets and never stores them', async () => {
    const one = await connect(t, userToken('typist'));
    one.send({ type: 'user_message', content: 'hello' });
    const { done } = await one.waitForReply();
    const two = await connect(t, userToken('typist'), done.session_id);
    one.send({ type: 'typing_indicator', metadata: { typing: true } });
    const typing = await two.waitForType('typing_indicator');
    expect(typing).toMatchObject({
      sender: 'user',
      session_id: done.session_id,
      metadata: { typing: 'true' },
    });
    expect(one.ofType('typing_indicator')).toHaveLength(0);
    const raw = await t.stored(done.session_id);
    expect(raw!.msgs).toHaveLength(2);
  });

  it('end_session ends the session; the next message starts a new one', async () => {
    const client = await connect(t, userToken('finisher'));
    client.send({ type: 'user_message', content: 'one' });
    const { done } = await client.waitForReply();
    client.send({ type: 'end_session', session_id: done.session_id });
    const notice = await client.waitFor((frame) => frame.type === 'notification');
    expect(notice.metadata).toMatchObject({ reason: 'session_ended' });
    const raw = await t.stored(done.session_id);
    expect(raw!.endTs).toBeInstanceOf(Date);
    const before = client.frames.length;
    client.send({ type: 'user_message', content: 'two' });
    const next = await client.waitFor((frame) => frame.type === 'loading', 10_000, before);
    expect(next.session_id).not.toBe(done.session_id);
  });

  it('stop_generation with nothing streaming and end_session on an ended session are answered', async () => {
    const client = await connect(t, userToken('quiet-stopper'));
    client.send({ type: 'user_message', content: 'short' });
    const { done } = await client.waitForReply();
    let from = client.frames.length;
    client.send({ type: 'stop_generation', session_id: done.session_id });
    const nothing = await client.waitFor((frame) => frame.type !== 'ai_response', 5_000, from);
    expect(nothing).toMatchObject({
      type: 'notification',
      sender: 'system',
      session_id: done.session_id,
      metadata: { reason: 'nothing_to_stop' },
    });

    client.send({ type: 'end_session', session_id: done.session_id });
    await client.waitFor((frame) => frame.metadata?.reason === 'session_ended', 5_000, from);
    from = client.frames.length;
    client.send({ type: 'end_session', session_id: done.session_id });
    const again = await client.waitFor(() => true, 5_000, from);
    expect(again).toMatchObject({
      type: 'notification',
      session_id: done.session_id,
      metadata: { reason: 'session_ended', event: 'session_ended' },
    });
  });

  it('caps a session at the message limit and continues in a new one, telling the client', async () => {
    const client = await connect(t, userToken('talker'));
    client.send({ type: 'user_message', content: 'first' });
    const first = await client.waitForReply();
    client.send({ type: 'user_message', content: 'second' });
    await client.waitFor(
      (f) =>
        f.type === 'ai_response' &&
        f.metadata?.done === 'true' &&
        f.metadata.message_id !== first.done.metadata!.message_id,
    );
    client.send({ type: 'user_message', content: 'third' });
    const notice = await client.waitFor(
      (frame) => frame.type === 'notification' && frame.metadata?.reason === 'message_limit',
    );
    expect(notice.session_id).toBe(first.done.session_id);
    const loading = await client.waitFor(
      (frame) => frame.type === 'loading' && frame.session_id !== first.done.session_id,
    );
    expect(loading.session_id).toMatch(/^[0-9a-f]{32}$/);
    const old = await t.stored(first.done.session_id);
    expect(old!.endTs).toBeInstanceOf(Date);
  });

  it('admin dashboards receive live session and takeover events; an admin gone for the grace period leaves', async () => {
    const dashboard = await connect(t, adminToken('dash', 'Dash'));
    const user = await connect(t, userToken('watched'));
    user.send({ type: 'user_message', content: 'watch me' });
    const started = await dashboard.waitFor(
      (f) => f.type === 'notification' && f.metadata?.event === 'session_started',
    );
    const { done } = await user.waitForReply();
    expect(started.session_id).toBe(done.session_id);
    const token = adminToken('helper', 'Helper');
    await fetch(`${t.baseUrl}/admin/takeover/${done.session_id}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
    });
    await dashboard.waitFor((f) => f.type === 'notification' && f.metadata?.event === 'takeover_started');
    const admin = await connect(t, token, done.session_id);
    await admin.close();
    const leave = await user.waitForType('admin_leave', 5_000);
    expect(leave.metadata).toMatchObject({ admin_id: 'helper', admin_name: 'Helper' });
    await dashboard.waitFor((f) => f.type === 'notification' && f.metadata?.event === 'takeover_ended');
    user.send({ type: 'end_session' });
    await dashboard.waitFor((f) => f.type === 'notification' && f.metadata?.event === 'session_ended');
  });

  it('an admin gone for the grace period is released for good: its sockets get no more user frames', async () => {
    const user = await connect(t, userToken('released'));
    user.send({ type: 'user_message', content: 'help' });
    const { done } = await user.waitForReply();
    const sessionId = done.session_id!;
    const token = adminToken('vanishing', 'Vanishing');
    await fetch(`${t.baseUrl}/admin/takeover/${sessionId}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
    });
    // The admin's dashboard socket (bound to no session) stays; its socket on the session goes.
    const dashboard = await connect(t, token);
    const assisting = await connect(t, token, sessionId);
    expect(assisting.frames[0].session_id).toBe(sessionId);
    await assisting.close();
    await user.waitForType('admin_leave', 5_000);

    // Coming back after the release, by the query or by a frame naming the session, binds nothing.
    const back = await connect(t, token, sessionId);
    expect(back.frames[0].session_id).not.toBe(sessionId);
    back.send({ type: 'typing_indicator', session_id: sessionId, metadata: { typing: 'true' } });
    await back.roundTrip();
    user.send({ type: 'typing_indicator', metadata: { typing: 'true' } });
    user.send({ type: 'user_message', content: 'anyone?' });
    // The later positive marker: the AI answers again (no human assists any more).
    await user.waitForDoneAfter(done);
    await back.roundTrip();
    await dashboard.roundTrip();
    const ofSession = (client: TestClient) =>
      client.frames.filter((frame) => frame.session_id === sessionId && frame.type !== 'notification');
    expect(ofSession(back)).toEqual([]);
    expect(ofSession(dashboard)).toEqual([]);
    expect(user.ofType('typing_indicator')).toEqual([]);
  });

  it('an admin reconnecting within the grace period keeps the takeover', async () => {
    const user = await connect(t, userToken('kept'));
    user.send({ type: 'user_message', content: 'keep' });
    const { done } = await user.waitForReply();
    const token = adminToken('steady', 'Steady');
    await fetch(`${t.baseUrl}/admin/takeover/${done.session_id}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
    });
    // A second takeover whose admin goes for good, later: its leave marks the end of a grace period
    // that began after this admin's.
    const markerUser = await connect(t, userToken('kept-marker'));
    markerUser.send({ type: 'user_message', content: 'marker' });
    const marker = (await markerUser.waitForReply()).done;
    const markerToken = adminToken('gone', 'Gone');
    await fetch(`${t.baseUrl}/admin/takeover/${marker.session_id}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${markerToken}` },
    });
    const markerAdmin = await connect(t, markerToken, marker.session_id);

    const admin = await connect(t, token, done.session_id);
    await admin.close();
    await connect(t, token, done.session_id);
    await markerAdmin.close();
    await markerUser.waitForType('admin_leave', 5_000);
    await user.roundTrip();
    expect(user.ofType('admin_leave')).toHaveLength(0);
    expect(await t.stored(done.session_id)).toMatchObject({ assistingAdminId: 'steady' });
  });
});

describe('token expiry on an open socket', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => t?.close());

  it('sends TOKEN_EXPIRED (not recoverable) and closes with 4001', async () => {
    const client = await connect(t, userToken('short-lived', { expiresInSeconds: 2 }));
    const error = await client.waitForType('error', 5_000);
    expect(error.error).toMatchObject({ code: 'TOKEN_EXPIRED', recoverable: false });
    expect(await client.closed).toBe(4001);
  });
});

describe('operational alerts', () => {
  it('alerts on a rate-limit spike with the affected users', async () => {
    const hook = await webhookReceiver();
    const t = await startTestApp(
      { NOTIFY_WEBHOOK_URL: hook.url, RATE_LIMIT: '1' },
      { rateLimitSpikeThreshold: 3 },
    );
    try {
      const a = await connect(t, userToken('spiker-a'));
      const b = await connect(t, userToken('spiker-b'));
      for (const client of [a, b, a, b, a, b]) client.send({ type: 'user_message', content: 'spam' });
      await eventually(
        async () => hook.alerts,
        (alerts) => alerts.some((alert) => alert.event === 'rate_limit_spike'),
      );
      const alert = hook.alerts.find((candidate) => candidate.event === 'rate_limit_spike');
      expect(alert.text).toMatch(/Affected users: 2/);
    } finally {
      await t.close();
      await hook.close();
    }
  });

  it('alerts when MongoDB is unreachable past the threshold, and when it recovers', async () => {
    const hook = await webhookReceiver();
    const dataDir = databaseTempDir('chatbox-alert-db-');
    const database = embeddedDatabase(dataDir);
    const uri = await database.start();
    const t = await startTestApp(
      { NOTIFY_WEBHOOK_URL: hook.url, MONGO_URI: uri },
      { databaseOutageAlertMs: 500, databaseCheckIntervalMs: 100 },
    );
    try {
      database.killForTest('SIGKILL');
      await eventually(
        async () => hook.alerts,
        (alerts) => alerts.some((alert) => alert.event === 'database_unreachable'),
        10_000,
      );
      await database.start();
      await eventually(
        async () => hook.alerts,
        (alerts) => alerts.some((alert) => alert.event === 'database_recovered'),
        20_000,
      );
      expect(hook.alerts.filter((alert) => alert.event === 'database_unreachable')).toHaveLength(1);
    } finally {
      await t.close().catch(() => undefined);
      await database.stop();
      await hook.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('protocol heartbeat', () => {
  it('pings every interval and closes a socket that stops answering pongs', async () => {
    const WebSocket = (await import('ws')).default;
    const t = await startTestApp({}, { pingIntervalMs: 100, pongTimeoutMs: 400 });
    try {
      const open = (autoPong: boolean) =>
        new Promise<InstanceType<typeof WebSocket>>((resolveOpen, reject) => {
          const socket = new WebSocket(`${t.wsUrl}?token=${userToken(autoPong ? 'alive' : 'silent')}`, {
            autoPong,
          });
          socket.once('open', () => resolveOpen(socket));
          socket.once('error', reject);
        });
      const alive = await open(true);
      const silent = await open(false);
      let pings = 0;
      silent.on('ping', () => pings++);
      const closed = new Promise<number>((r) => silent.once('close', (code) => r(code)));
      const code = await closed;
      expect(pings).toBeGreaterThanOrEqual(2);
      expect(code).toBe(1006);
      expect(alive.readyState).toBe(WebSocket.OPEN);
      alive.close();
    } finally {
      await t.close();
    }
  });
});
