import { createServer, Server } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { NotificationService } from '@chatbox/notification';
import { startTestApp, TestApp } from '../support/app';
import { adminToken, userToken } from '../support/tokens';
import { until } from '../support/until';
import { TestClient } from '../support/ws-client';

interface Mail {
  to: string[];
  raw: string;
}

async function listen(server: NetServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('admin: help requests, takeover, admin API', () => {
  let t: TestApp;
  let smtp: SMTPServer;
  let http: Server;
  const mails: Mail[] = [];
  const sms: string[] = [];
  const webhooks: unknown[] = [];
  const clients: TestClient[] = [];

  beforeAll(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, session, callback) {
        let raw = '';
        stream.on('data', (chunk: Buffer) => (raw += chunk.toString()));
        stream.on('end', () => {
          mails.push({ to: session.envelope.rcptTo.map((rcpt) => rcpt.address), raw });
          callback();
        });
      },
    });
    const smtpPort = await listen(smtp.server);
    http = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        if (request.url?.includes('/Messages.json')) sms.push(body);
        else webhooks.push(JSON.parse(body));
        response.writeHead(201, { 'Content-Type': 'application/json' }).end('{}');
      });
    });
    const httpPort = await listen(http);
    t = await startTestApp({
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: String(smtpPort),
      SMTP_SECURE: 'false',
      EMAIL_FROM: 'chatbox@example.org',
      ADMIN_EMAILS: 'ops1@example.org,ops2@example.org',
      ADMIN_PHONES: '+15550001,+15550002',
      SMS_ACCOUNT_SID: 'AC123',
      SMS_AUTH_TOKEN: 'sms-token',
      SMS_FROM_NUMBER: '+15559999',
      SMS_API_BASE: `http://127.0.0.1:${httpPort}`,
      NOTIFY_WEBHOOK_URL: `http://127.0.0.1:${httpPort}/hook`,
      ADMIN_PANEL_URL: 'https://admin.example.org/chatbox/admin-page',
      ADMIN_RATE_LIMIT: '1000',
    });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await t?.close();
    await new Promise<void>((resolve) => (smtp ? smtp.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
  });

  async function connect(token: string, sessionId?: string): Promise<TestClient> {
    const client = await TestClient.connect(t.wsUrl, { token, sessionId });
    clients.push(client);
    await client.waitForType('connection_status');
    return client;
  }

  function api(path: string, token: string, method = 'GET'): Promise<Response> {
    return fetch(`${t.baseUrl}${path}`, { method, headers: { Authorization: `Bearer ${token}` } });
  }

  it('help request: one e-mail per admin, one SMS per phone, one webhook, a dashboard event; no repeat alert', async () => {
    const dashboard = await connect(adminToken('watcher', 'Watcher'));
    const user = await connect(userToken('needy'));
    user.send({ type: 'user_message', content: 'My order is missing.' });
    const { done } = await user.waitForReply();
    user.send({ type: 'help_request', session_id: done.session_id });
    const confirmation = await user.waitFor(
      (frame) => frame.type === 'connection_status' && frame.content?.startsWith('Help') === true,
    );
    expect(confirmation.content).toBe('Help request sent. An administrator will join your session shortly.');
    const event = await dashboard.waitFor(
      (frame) => frame.type === 'notification' && frame.metadata?.event === 'help_requested',
    );
    expect(event.session_id).toBe(done.session_id);
    await until(() => mails.length >= 2 && sms.length >= 2 && webhooks.length >= 1);
    expect(mails.map((mail) => mail.to[0]).sort()).toEqual(['ops1@example.org', 'ops2@example.org']);
    expect(mails[0].raw).toContain('Subject: Help Request - User needy');
    // Bodies are quoted-printable: undo soft line breaks and `=3D` before matching.
    const decoded = (mail: Mail) => mail.raw.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
    expect(decoded(mails[0])).toContain(
      `https://admin.example.org/chatbox/admin-page?session_id=${done.session_id}`,
    );
    expect(decoded(mails[0])).toContain('My order is missing.');
    expect(sms.map((body) => new URLSearchParams(body).get('Body'))).toEqual([
      `Help Request - User needy needs assistance. Session: ${done.session_id}`,
      `Help Request - User needy needs assistance. Session: ${done.session_id}`,
    ]);
    const raw = await t.stored(done.session_id);
    expect(raw).toMatchObject({ helpRequested: true, helpRequestedAt: expect.any(Date) });

    // The repeat is weighed against the session's alert budget before anything is sent: once it is
    // counted as suppressed, nothing of it can follow.
    const notifications = t.app.get(NotificationService);
    const suppressedBefore = notifications.counters().suppressed;
    user.send({ type: 'help_request', session_id: done.session_id });
    await user.waitFor(
      (frame) =>
        frame.type === 'connection_status' &&
        frame !== confirmation &&
        frame.content?.startsWith('Help') === true,
    );
    await until(() => notifications.counters().suppressed === suppressedBefore + 1);
    expect(mails).toHaveLength(2);
    expect(sms).toHaveLength(2);
    expect(webhooks).toHaveLength(1);
  });

  it('takeover conversation: join, no AI while assisted, both directions, leave, AI again; history and row', async () => {
    const user = await connect(userToken('customer'));
    user.send({ type: 'user_message', content: 'Hello, I need a human.' });
    const { done } = await user.waitForReply();
    const sessionId = done.session_id!;
    const token = adminToken('agent7', 'Agent Seven');

    const taken = await api(`/admin/takeover/${sessionId}`, token, 'POST');
    expect(taken.status).toBe(200);
    expect(await taken.json()).toEqual({
      message: 'Takeover initiated successfully',
      session_id: sessionId,
      admin_id: 'agent7',
      admin_name: 'Agent Seven',
    });
    const join = await user.waitForType('admin_join');
    expect(join).toMatchObject({
      sender: 'admin',
      content: 'Agent Seven has joined the conversation',
      metadata: { admin_id: 'agent7', admin_name: 'Agent Seven' },
    });
    expect((await api(`/admin/takeover/${sessionId}`, token, 'POST')).status).toBe(200);

    const admin = await connect(token, sessionId);
    expect(admin.frames[0].session_id).toBe(sessionId);
    const userFramesBefore = user.frames.length;
    user.send({ type: 'user_message', content: 'Are you there?' });
    const seen = await admin.waitFor((frame) => frame.type === 'user_message');
    expect(seen).toMatchObject({ sender: 'user', content: 'Are you there?' });
    admin.send({ type: 'typing_indicator', metadata: { typing: 'true' } });
    const typing = await user.waitFor((frame) => frame.type === 'typing_indicator');
    expect(typing).toMatchObject({ sender: 'admin', metadata: { typing: 'true' } });
    admin.send({ type: 'user_message', content: 'Yes, I am here to help.' });
    const fromAdmin = await user.waitFor((frame) => frame.type === 'user_message');
    expect(fromAdmin).toMatchObject({ sender: 'admin', content: 'Yes, I am here to help.' });

    admin.send({ type: 'admin_leave' });
    const [userLeave, adminLeave] = await Promise.all([
      user.waitForType('admin_leave'),
      admin.waitForType('admin_leave'),
    ]);
    expect(userLeave).toMatchObject({ content: 'Agent Seven has left the conversation', sender: 'admin' });
    expect(adminLeave.metadata).toMatchObject({ admin_id: 'agent7' });

    // After leaving, the admin's socket is unbound: it hears nothing more of the session and can
    // no longer write into it (a frame naming the session does not bind it again).
    const adminFramesBefore = admin.frames.length;
    admin.send({ type: 'typing_indicator', session_id: sessionId, metadata: { typing: 'true' } });
    user.send({ type: 'user_message', content: 'Thanks, bot again?' });
    const nextReply = await user.waitForDoneAfter(done);
    // A session's replies run one after another: an AI answer to the message sent during the
    // takeover would have come before this one.
    const aiFrames = user.frames
      .slice(userFramesBefore)
      .filter((frame) => ['loading', 'ai_response'].includes(frame.type));
    expect(aiFrames.filter((frame) => frame.type === 'loading')).toHaveLength(1);
    expect(
      new Set(
        aiFrames.filter((frame) => frame.type === 'ai_response').map((frame) => frame.metadata?.message_id),
      ),
    ).toEqual(new Set([nextReply.metadata!.message_id]));
    await admin.roundTrip();
    expect(admin.frames.slice(adminFramesBefore).map((frame) => frame.type)).toEqual(['pong']);
    expect(user.frames.filter((frame) => frame.type === 'typing_indicator')).toHaveLength(1);

    const history = (await (await api(`/sessions/${sessionId}`, userToken('customer'))).json()) as any;
    expect(history.messages.map((m: any) => [m.sender, m.content.slice(0, 12)])).toEqual([
      ['user', 'Hello, I nee'],
      ['ai', expect.any(String)],
      ['user', 'Are you ther'],
      ['admin', 'Yes, I am he'],
      ['user', 'Thanks, bot '],
      ['ai', expect.any(String)],
    ]);
    const rows = (await (await api(`/admin/sessions?user_id=customer`, token)).json()) as any[];
    // SPEC 5: `assisting_admin_name` only while an admin assists; the assist is in the log.
    expect(rows[0]).toMatchObject({ session_id: sessionId, admin_assisted: true });
    expect(rows[0]).not.toHaveProperty('assisting_admin_name');
    // Nobody asked for help in this session: the takeover gives it no help_state.
    expect(rows[0]).not.toHaveProperty('help_state');
    const raw = await t.stored(sessionId);
    expect(raw).toMatchObject({ adminAssisted: true });
    expect(raw).not.toHaveProperty('assistingAdminId');
    expect(raw).not.toHaveProperty('assistingSince');
    expect(raw!.assists).toEqual([
      { adminId: 'agent7', adminName: 'Agent Seven', start: expect.any(Date), end: expect.any(Date) },
    ]);
    const detail = (await (await api(`/admin/sessions/${sessionId}`, token)).json()) as any;
    expect(detail.takeovers).toHaveLength(1);
  });

  it('racing takeovers by the same admin: all 200, one admin_join', async () => {
    const user = await connect(userToken('double-click'));
    user.send({ type: 'user_message', content: 'hello?' });
    const { done } = await user.waitForReply();
    const token = adminToken('eager', 'Eager Admin');
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => api(`/admin/takeover/${done.session_id}`, token, 'POST')),
    );
    expect(responses.map((response) => response.status)).toEqual(Array(8).fill(200));
    await user.roundTrip();
    expect(user.ofType('admin_join')).toHaveLength(1);
  });

  it('an admin socket cannot bind a session it is not assisting', async () => {
    const user = await connect(userToken('watched'));
    user.send({ type: 'user_message', content: 'private words' });
    const { done } = await user.waitForReply();
    const sessionId = done.session_id!;
    const admin = await connect(adminToken('nosy', 'Nosy'), sessionId);
    expect(admin.frames[0].session_id).not.toBe(sessionId); // not bound: a new session's id is announced
    admin.send({ type: 'typing_indicator', session_id: sessionId, metadata: { typing: 'true' } });
    admin.send({
      type: 'stream_resume',
      session_id: sessionId,
      metadata: { message_id: 'x', last_seq: '0' },
    });
    const refused = await admin.waitFor((frame) => frame.type === 'error');
    expect(refused.error!.code).toBe('NOT_FOUND');
    user.send({ type: 'user_message', content: 'more private words' });
    await user.waitForDoneAfter(done);
    await admin.roundTrip();
    // Only the error about its own frame names the session: nothing of the session reached it.
    expect(admin.frames.filter((frame) => frame.session_id === sessionId && frame.type !== 'error')).toEqual(
      [],
    );
    expect(user.ofType('typing_indicator')).toEqual([]);
  });

  it('DELETE /admin/takeover/:id ends it (204) and only the assisting admin may', async () => {
    const user = await connect(userToken('customer2'));
    user.send({ type: 'user_message', content: 'help me' });
    const { done } = await user.waitForReply();
    await api(`/admin/takeover/${done.session_id}`, adminToken('a1', 'A One'), 'POST');
    expect((await api(`/admin/takeover/${done.session_id}`, adminToken('a2'), 'DELETE')).status).toBe(404);
    expect(
      (await api(`/admin/takeover/${done.session_id}`, adminToken('a1', 'A One'), 'DELETE')).status,
    ).toBe(204);
    await user.waitForType('admin_leave');
  });

  it('DELETE /admin/takeover/:id unbinds the admin socket: no more user frames, no way back by naming the session', async () => {
    const user = await connect(userToken('customer3'));
    user.send({ type: 'user_message', content: 'a human please' });
    const { done } = await user.waitForReply();
    const sessionId = done.session_id!;
    const token = adminToken('rest-leaver', 'Rest Leaver');
    expect((await api(`/admin/takeover/${sessionId}`, token, 'POST')).status).toBe(200);
    const admin = await connect(token, sessionId);
    expect(admin.frames[0].session_id).toBe(sessionId);
    user.send({ type: 'user_message', content: 'while assisted' });
    await admin.waitFor((frame) => frame.type === 'user_message' && frame.content === 'while assisted');

    expect((await api(`/admin/takeover/${sessionId}`, token, 'DELETE')).status).toBe(204);
    await Promise.all([user.waitForType('admin_leave'), admin.waitForType('admin_leave')]);
    const adminFramesBefore = admin.frames.length;
    // Naming the session in a frame does not bind the socket again (it is no longer assisting).
    admin.send({ type: 'typing_indicator', session_id: sessionId, metadata: { typing: 'true' } });
    await admin.roundTrip();
    user.send({ type: 'typing_indicator', metadata: { typing: 'true' } });
    user.send({ type: 'user_message', content: 'after the takeover' });
    // The later positive marker: the AI answers again, so the message went through the session.
    await user.waitForDoneAfter(done);
    await admin.roundTrip();
    expect(admin.frames.slice(adminFramesBefore).map((frame) => frame.type)).toEqual(['pong', 'pong']);
  });

  it('20 parallel takeovers from 20 admins: one 200, nineteen 409 naming the winner', async () => {
    const user = await connect(userToken('contested'));
    user.send({ type: 'user_message', content: 'race' });
    const { done } = await user.waitForReply();
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        api(`/admin/takeover/${done.session_id}`, adminToken(`racer${index}`, `Racer ${index}`), 'POST'),
      ),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.filter((status) => status === 409)).toHaveLength(19);
    const winner = responses[statuses.indexOf(200)];
    const { admin_name: winnerName } = (await winner.json()) as any;
    const loser = (await responses[statuses.indexOf(409)].json()) as any;
    expect(loser).toMatchObject({ code: 'CONFLICT' });
    expect(loser.message).toContain(winnerName);
    expect(user.ofType('admin_join')).toHaveLength(1);
  });

  it('security: user tokens get 403 on every admin route; operator-shaped queries are refused', async () => {
    const routes: [string, string][] = [
      ['GET', '/admin/sessions'],
      ['GET', '/admin/users/x/sessions'],
      ['GET', '/admin/sessions/abc'],
      ['GET', '/admin/metrics'],
      ['GET', '/admin/metrics/timeseries'],
      ['POST', '/admin/takeover/abc'],
      ['DELETE', '/admin/takeover/abc'],
    ];
    for (const [method, path] of routes) {
      const response = await api(path, userToken('plain-user'), method);
      expect([path, response.status]).toEqual([path, 403]);
      expect(((await response.json()) as any).code).toBe('FORBIDDEN');
    }
    const admin = adminToken('sec');
    for (const query of [
      'user_id[$ne]=x',
      'user_id=a&user_id=b',
      'sort_by=password',
      'limit=0',
      'limit=1001',
      'status=open',
      'start_time=yesterday',
      'offset=-1',
    ]) {
      const response = await api(`/admin/sessions?${query}`, admin);
      expect([query, response.status]).toEqual([query, 400]);
    }
    const json = await api(`/admin/sessions?user_id=${encodeURIComponent('{"$gt":""}')}`, admin);
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual([]);
    expect((await api('/admin/metrics?start_time=2026-01-02&end_time=2026-01-01', admin)).status).toBe(400);
    for (const query of [
      'bucket=__proto__',
      'bucket=constructor',
      'bucket=toString',
      'start_time=2026-02-31',
      'start_time=2026-02-30T10:00:00Z',
      'end_time=2026-04-31',
      'start_time=2026-02-28T24:00:00Z',
    ]) {
      const response = await api(`/admin/metrics/timeseries?${query}`, admin);
      expect([query, response.status]).toEqual([query, 400]);
      expect(((await response.json()) as any).code).toBe('BAD_REQUEST');
    }
    expect(
      (await api('/admin/metrics/timeseries?start_time=2024-02-29&end_time=2024-03-01', admin)).status,
    ).toBe(200);
  });
});

describe('admin: metrics and listing on a fixture', () => {
  let t: TestApp;
  const admin = adminToken('metrics-admin');
  const at = (time: string) => new Date(`2026-03-10T${time}:00.000Z`);

  beforeAll(async () => {
    t = await startTestApp({ ADMIN_RATE_LIMIT: '1000' });
    const base = {
      msgs: [],
      adminAssisted: false,
      helpRequested: false,
      promptTokens: 0,
      completionTokens: 0,
    };
    await t.db.collection('sessions').insertMany([
      // s1: 10:00–11:00, s2: 10:30–12:00, s3: 09:00–10:15 (starts before the range), s4: 11:30–active.
      {
        _id: 's1',
        uid: 'ua',
        ts: at('10:00'),
        endTs: at('11:00'),
        dur: 3600,
        lastActivity: at('11:00'),
        totalTokens: 100,
        maxRespTime: 900,
        avgRespTime: 600,
        respTimeSum: 1200,
        respCount: 2,
        msgCount: 4,
        ...base,
        adminAssisted: true,
      },
      {
        _id: 's2',
        uid: 'ub',
        ts: at('10:30'),
        endTs: at('12:00'),
        dur: 5400,
        lastActivity: at('12:00'),
        totalTokens: 50,
        maxRespTime: 300,
        avgRespTime: 300,
        respTimeSum: 300,
        respCount: 1,
        msgCount: 2,
        ...base,
        helpRequested: true,
      },
      {
        _id: 's3',
        uid: 'ua',
        ts: at('09:00'),
        endTs: at('10:15'),
        dur: 4500,
        lastActivity: at('10:15'),
        totalTokens: 7,
        maxRespTime: 100,
        avgRespTime: 100,
        respTimeSum: 100,
        respCount: 1,
        msgCount: 2,
        ...base,
      },
      {
        _id: 's4',
        uid: 'uc',
        ts: at('11:30'),
        lastActivity: at('11:45'),
        totalTokens: 0,
        maxRespTime: 0,
        avgRespTime: 0,
        respTimeSum: 0,
        respCount: 0,
        msgCount: 1,
        ...base,
      },
    ] as never[]);
  });
  afterAll(async () => t?.close());

  const get = async (path: string) => {
    const response = await fetch(`${t.baseUrl}${path}`, { headers: { Authorization: `Bearer ${admin}` } });
    return {
      status: response.status,
      total: response.headers.get('x-total-count'),
      body: (await response.json()) as any,
    };
  };

  it('computes exact numbers over 10:00–12:00 including concurrency across the range edges', async () => {
    const { status, body } = await get(
      '/admin/metrics?start_time=2026-03-10T10:00:00Z&end_time=2026-03-10T12:00:00Z',
    );
    expect(status).toBe(200);
    // Inside 10:00–12:00: s1 60 min, s2 90 min, s3 15 min (clipped), s4 30 min (active, clipped at 12:00) = 195 min / 120.
    expect(body).toMatchObject({
      total_sessions: 3,
      avg_concurrent: 1.625,
      max_concurrent: 2,
      total_tokens: 150,
      avg_response_time: 500,
      max_response_time: 900,
      admin_assisted_count: 1,
      help_requested_count: 1,
      message_count: 7,
      time_range: { start: '2026-03-10T10:00:00.000Z', end: '2026-03-10T12:00:00.000Z' },
    });
    expect(body.active_sessions).toBeGreaterThanOrEqual(1);
  });

  it('answers zeros for an empty range and accepts date-only bounds', async () => {
    const { body } = await get('/admin/metrics?start_time=2025-01-01&end_time=2025-01-02');
    expect(body).toMatchObject({
      total_sessions: 0,
      avg_concurrent: 0,
      max_concurrent: 0,
      total_tokens: 0,
      avg_response_time: 0,
    });
    expect(body.time_range).toEqual({ start: '2025-01-01T00:00:00.000Z', end: '2025-01-02T23:59:59.999Z' });
  });

  it('timeseries buckets the range', async () => {
    const { body } = await get(
      '/admin/metrics/timeseries?start_time=2026-03-10T10:00:00Z&end_time=2026-03-10T12:00:00Z&bucket=1h',
    );
    expect(body.buckets).toHaveLength(2);
    expect(body.buckets[0]).toMatchObject({ sessions_started: 2, max_concurrent: 2 });
    expect(body.buckets[1]).toMatchObject({ sessions_started: 1 });
  });

  it.each([
    ['start_time', 'asc', ['s3', 's1', 's2', 's4']],
    ['start_time', 'desc', ['s4', 's2', 's1', 's3']],
    ['total_tokens', 'desc', ['s1', 's2', 's3', 's4']],
    ['max_response_time', 'asc', ['s4', 's3', 's2', 's1']],
    ['avg_response_time', 'desc', ['s1', 's2', 's3', 's4']],
    ['message_count', 'desc', ['s1', 's2', 's3', 's4']],
    ['user_id', 'asc', ['s1', 's3', 's2', 's4']],
    ['duration', 'desc', ['s2', 's3', 's1', 's4']],
    ['last_activity', 'desc', ['s2', 's4', 's1', 's3']],
  ])('sort_by=%s %s orders correctly with ties stable', async (sortBy, order, expected) => {
    const { body, total } = await get(`/admin/sessions?sort_by=${sortBy}&sort_order=${order}`);
    expect(body.map((row: any) => row.id)).toEqual(expected);
    expect(total).toBe('4');
  });

  it('filters: status, admin_assisted, help_requested, user, start range, pagination', async () => {
    expect((await get('/admin/sessions?status=active')).body.map((r: any) => r.id)).toEqual(['s4']);
    expect((await get('/admin/sessions?admin_assisted=true')).body.map((r: any) => r.id)).toEqual(['s1']);
    expect((await get('/admin/sessions?help_requested=true')).body.map((r: any) => r.id)).toEqual(['s2']);
    expect((await get('/admin/sessions?user_id=ua&sort_order=asc')).body.map((r: any) => r.id)).toEqual([
      's3',
      's1',
    ]);
    expect((await get('/admin/users/ua/sessions')).body.map((r: any) => r.id)).toEqual(['s1', 's3']);
    const ranged = await get(
      '/admin/sessions?start_time_from=2026-03-10T10:00:00Z&start_time_to=2026-03-10T11:00:00Z&sort_order=asc',
    );
    expect(ranged.body.map((r: any) => r.id)).toEqual(['s1', 's2']);
    const page = await get('/admin/sessions?sort_by=start_time&sort_order=asc&limit=2&offset=2');
    expect(page.body.map((r: any) => r.id)).toEqual(['s2', 's4']);
    expect(page.total).toBe('4');
    expect(Array.isArray(page.body)).toBe(true);
  });
});

describe('admin: sort ties and failing e-mail', () => {
  it('ties keep a stable order (by id) in both directions and across pages', async () => {
    const t = await startTestApp({ ADMIN_RATE_LIMIT: '1000' });
    try {
      const ts = new Date('2026-03-11T10:00:00.000Z');
      await t.db.collection('sessions').insertMany(
        ['t3', 't1', 't4', 't2'].map((id) => ({
          _id: id,
          uid: 'tie',
          ts,
          msgs: [],
          totalTokens: 10,
          msgCount: 2,
        })) as never[],
      );
      const ids = async (query: string) =>
        (
          (await (
            await fetch(`${t.baseUrl}/admin/sessions?${query}`, {
              headers: { Authorization: `Bearer ${adminToken('tie-admin')}` },
            })
          ).json()) as any[]
        ).map((row) => row.id);
      expect(await ids('sort_by=total_tokens&sort_order=asc')).toEqual(['t1', 't2', 't3', 't4']);
      expect(await ids('sort_by=total_tokens&sort_order=desc')).toEqual(['t1', 't2', 't3', 't4']);
      expect([
        ...(await ids('sort_by=start_time&limit=2')),
        ...(await ids('sort_by=start_time&limit=2&offset=2')),
      ]).toEqual(['t1', 't2', 't3', 't4']);
    } finally {
      await t.close();
    }
  });

  it('SMTP down: the user still gets the confirmation and the failure is counted', async () => {
    const { freePort } = await import('@chatbox/storage');
    const t = await startTestApp({
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: String(await freePort()),
      ADMIN_EMAILS: 'ops@example.org',
    });
    const user = await TestClient.connect(t.wsUrl, { token: userToken('smtp-down') });
    try {
      await user.waitForType('connection_status');
      user.send({ type: 'help_request', content: 'anyone?' });
      const confirmation = await user.waitFor(
        (frame) => frame.type === 'connection_status' && frame.content?.startsWith('Help') === true,
      );
      expect(confirmation.session_id).toMatch(/^[0-9a-f]{32}$/);
      const deadline = Date.now() + 15_000;
      let failed = 0;
      while (failed === 0 && Date.now() < deadline) {
        const text = await (await fetch(`${t.baseUrl}/metrics/prometheus`)).text();
        failed = Number(
          /^chatbox_notifications_failed_total\{channel="email"\} (\S+)$/m.exec(text)?.[1] ?? 0,
        );
        if (failed === 0) await new Promise((r) => setTimeout(r, 200));
      }
      expect(failed).toBe(1);
    } finally {
      await user.close();
      await t.close();
    }
  });
});
