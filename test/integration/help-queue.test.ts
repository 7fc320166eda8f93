import { NotificationService } from '@chatbox/notification';
import { startTestApp, TestApp } from '../support/app';
import { adminToken, userToken } from '../support/tokens';
import { Frame, TestClient } from '../support/ws-client';

const KEY_32 = 'abcdefghijklmnopqrstuvwxyz012345';
const CANNED = ['Hello, I am looking into it now.', 'Thanks for waiting, it is fixed.'];

describe('help queue, rename, delete, canned replies, admin budgets (REST)', () => {
  let t: TestApp;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      ENCRYPTION_KEY: KEY_32,
      ADMIN_RATE_LIMIT: '1000',
      ADMIN_READ_RATE_LIMIT: '1000',
      ADMIN_CANNED_REPLIES: JSON.stringify(CANNED),
    });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => t?.close());

  function call(path: string, token: string | undefined, method = 'GET', body?: unknown): Promise<Response> {
    return fetch(`${t.baseUrl}${path}`, {
      method,
      headers: {
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  async function connect(token: string, sessionId?: string): Promise<TestClient> {
    const client = await TestClient.connect(t.wsUrl, { token, sessionId });
    clients.push(client);
    await client.waitForType('connection_status');
    return client;
  }

  /** A user's session made by a help request (no model reply needed). */
  async function askForHelp(userId: string): Promise<{ user: TestClient; sessionId: string }> {
    const user = await connect(userToken(userId));
    user.send({ type: 'help_request', content: 'I need a person' });
    const confirmation = await user.waitFor(
      (frame) => frame.type === 'connection_status' && (frame.content ?? '').startsWith('Help request sent'),
    );
    return { user, sessionId: confirmation.session_id! };
  }

  const rowOf = async (sessionId: string, userId: string): Promise<any> => {
    const rows = (await (await call(`/admin/sessions?user_id=${userId}`, adminToken('a1'))).json()) as any[];
    return rows.find((row) => row.session_id === sessionId);
  };

  it('help_state goes open → assisted → resolved; assisting_admin_name only while assisting', async () => {
    const { user, sessionId } = await askForHelp('queue-user');
    const open = await rowOf(sessionId, 'queue-user');
    expect(open).toMatchObject({ help_requested: true, help_state: 'open' });
    expect(open).not.toHaveProperty('assisting_admin_name');

    const admin = adminToken('agent-q', 'Quinn Agent');
    expect((await call(`/admin/takeover/${sessionId}`, admin, 'POST')).status).toBe(200);
    await user.waitForType('admin_join');
    const assisted = await rowOf(sessionId, 'queue-user');
    expect(assisted).toMatchObject({ help_state: 'assisted', assisting_admin_name: 'Quinn Agent' });
    const detailWhile = (await (await call(`/sessions/${sessionId}`, userToken('queue-user'))).json()) as any;
    expect(detailWhile.assisting_admin_name).toBe('Quinn Agent');
    // Asking again while an admin is there does not reopen the request.
    user.send({ type: 'help_request' });
    await user.waitFor(
      (frame) => frame.type === 'connection_status' && (frame.content ?? '').startsWith('Help request sent'),
      5_000,
      user.frames.length,
    );
    expect((await rowOf(sessionId, 'queue-user')).help_state).toBe('assisted');

    expect((await call(`/admin/takeover/${sessionId}`, admin, 'DELETE')).status).toBe(204);
    await user.waitForType('admin_leave');
    const after = await rowOf(sessionId, 'queue-user');
    // The regression of issue 15: the name stayed after the admin left.
    expect(after).toMatchObject({ admin_assisted: true, help_state: 'resolved' });
    expect(after).not.toHaveProperty('assisting_admin_name');
    const detail = (await (await call(`/sessions/${sessionId}`, userToken('queue-user'))).json()) as any;
    expect(detail).not.toHaveProperty('assisting_admin_name');
    const adminDetail = (await (await call(`/admin/sessions/${sessionId}`, admin)).json()) as any;
    expect(adminDetail).not.toHaveProperty('assisting_admin_name');
    expect(adminDetail.takeovers).toHaveLength(1);

    // A new request opens it again.
    user.send({ type: 'help_request' });
    await user.waitFor(
      (frame) => frame.type === 'connection_status' && (frame.content ?? '').startsWith('Help request sent'),
      5_000,
      user.frames.length,
    );
    expect((await rowOf(sessionId, 'queue-user')).help_state).toBe('open');
    const stored = await t.stored(sessionId);
    expect(stored).toMatchObject({ helpState: 'open', helpRequested: true });
  });

  /** Asks again on the user's socket; resolves when the confirmation arrived. */
  async function askAgain(user: TestClient): Promise<void> {
    const from = user.frames.length;
    user.send({ type: 'help_request' });
    await user.waitFor(
      (frame) => frame.type === 'connection_status' && (frame.content ?? '').startsWith('Help request sent'),
      5_000,
      from,
    );
  }

  const helpEvents = (dashboard: TestClient, sessionId: string, from = 0) =>
    dashboard.frames
      .slice(from)
      .filter((frame: Frame) => frame.metadata?.event === 'help_requested' && frame.session_id === sessionId);

  it('a request made again after a resolve reaches the open dashboards within the alert window; only a repeat while waiting does not', async () => {
    const notifications = t.app.get(NotificationService);
    const dashboard = await connect(adminToken('queue-watcher'));
    const { user, sessionId } = await askForHelp('asks-twice');
    await dashboard.waitFor(
      (frame) => frame.metadata?.event === 'help_requested' && frame.session_id === sessionId,
    );
    expect((await call(`/admin/sessions/${sessionId}/resolve`, adminToken('a1'), 'POST')).status).toBe(204);
    await dashboard.waitFor(
      (frame) => frame.metadata?.event === 'help_resolved' && frame.session_id === sessionId,
    );

    // Within NOTIFY_RATE_WINDOW (5 minutes by default): the e-mail/SMS/webhook budget of the session
    // is spent (the alert counts as suppressed), the dashboards are told all the same.
    const suppressedBefore = notifications.counters().suppressed;
    const from = dashboard.frames.length;
    await askAgain(user);
    const again = await dashboard.waitFor(
      (frame) => frame.metadata?.event === 'help_requested' && frame.session_id === sessionId,
      5_000,
      from,
    );
    expect(again).toMatchObject({ type: 'notification', metadata: { user_id: 'asks-twice' } });
    expect(notifications.counters().suppressed).toBe(suppressedBefore + 1);
    expect((await rowOf(sessionId, 'asks-twice')).help_state).toBe('open');

    // Asking once more while the request waits is a repeat: nothing new for the dashboards (a later
    // positive marker, another user's request, proves the event would have arrived by now).
    const beforeRepeat = dashboard.frames.length;
    await askAgain(user);
    const { sessionId: markerId } = await askForHelp('queue-marker');
    await dashboard.waitFor(
      (frame) => frame.metadata?.event === 'help_requested' && frame.session_id === markerId,
      5_000,
      beforeRepeat,
    );
    expect(helpEvents(dashboard, sessionId, beforeRepeat)).toEqual([]);
  });

  it('a takeover nobody asked for gives no help_state, during or after; asking while the admin is there is "assisted"', async () => {
    const admin = adminToken('agent-t', 'Tess Agent');
    const user = await connect(userToken('unasked-user'));
    user.send({ type: 'model_select', model_id: 'demo' });
    const selected = await user.waitFor((frame) => frame.type === 'connection_status' && !!frame.model_id);
    const sessionId = selected.session_id!;
    const ids = async (query: string) =>
      ((await (await call(`/admin/sessions?user_id=unasked-user&${query}`, admin)).json()) as any[]).map(
        (row) => row.session_id,
      );

    expect((await call(`/admin/takeover/${sessionId}`, admin, 'POST')).status).toBe(200);
    await user.waitForType('admin_join');
    const during = await rowOf(sessionId, 'unasked-user');
    expect(during).toMatchObject({ help_requested: false, assisting_admin_name: 'Tess Agent' });
    expect(during).not.toHaveProperty('help_state');
    expect(await ids('help_state=assisted')).toEqual([]);
    expect((await call(`/admin/sessions/${sessionId}/resolve`, admin, 'POST')).status).toBe(409);

    expect((await call(`/admin/takeover/${sessionId}`, admin, 'DELETE')).status).toBe(204);
    await user.waitForType('admin_leave');
    const after = await rowOf(sessionId, 'unasked-user');
    expect(after).toMatchObject({ admin_assisted: true, help_requested: false });
    expect(after).not.toHaveProperty('help_state');
    expect(await ids('help_state=resolved')).toEqual([]);
    expect(await t.stored(sessionId)).not.toHaveProperty('helpState');

    // Taken over again, and now the user asks: the admin is already there, so it is being helped.
    expect((await call(`/admin/takeover/${sessionId}`, admin, 'POST')).status).toBe(200);
    await askAgain(user);
    expect(await rowOf(sessionId, 'unasked-user')).toMatchObject({
      help_requested: true,
      help_state: 'assisted',
    });
    expect(await ids('help_state=assisted')).toEqual([sessionId]);
    expect((await call(`/admin/takeover/${sessionId}`, admin, 'DELETE')).status).toBe(204);
    expect((await rowOf(sessionId, 'unasked-user')).help_state).toBe('resolved');
    expect(await ids('help_state=resolved')).toEqual([sessionId]);
  });

  it('resolve while an admin assists: allowed, the row says resolved while the admin stays; the leave keeps it', async () => {
    const dashboard = await connect(adminToken('assist-watcher'));
    const { user, sessionId } = await askForHelp('resolved-while-helped');
    const admin = adminToken('agent-r', 'Rey Agent');
    expect((await call(`/admin/takeover/${sessionId}`, admin, 'POST')).status).toBe(200);
    await user.waitForType('admin_join');
    expect((await rowOf(sessionId, 'resolved-while-helped')).help_state).toBe('assisted');

    expect((await call(`/admin/sessions/${sessionId}/resolve`, admin, 'POST')).status).toBe(204);
    await dashboard.waitFor(
      (frame) => frame.metadata?.event === 'help_resolved' && frame.session_id === sessionId,
    );
    expect(await rowOf(sessionId, 'resolved-while-helped')).toMatchObject({
      help_state: 'resolved',
      assisting_admin_name: 'Rey Agent',
    });
    expect((await call(`/admin/takeover/${sessionId}`, admin, 'DELETE')).status).toBe(204);
    await user.waitForType('admin_leave');
    const after = await rowOf(sessionId, 'resolved-while-helped');
    expect(after).toMatchObject({ help_state: 'resolved', admin_assisted: true });
    expect(after).not.toHaveProperty('assisting_admin_name');
  });

  it('POST /admin/sessions/:id/resolve: 204, dashboards told once, idempotent; 404, 409, 403, 401', async () => {
    const dashboard = await connect(adminToken('watcher'));
    const { sessionId } = await askForHelp('resolve-user');
    const admin = adminToken('resolver', 'Rita Resolver');

    const first = await call(`/admin/sessions/${sessionId}/resolve`, admin, 'POST');
    expect(first.status).toBe(204);
    expect(await first.text()).toBe('');
    const event = await dashboard.waitFor((frame) => frame.metadata?.event === 'help_resolved');
    expect(event).toMatchObject({
      type: 'notification',
      sender: 'system',
      session_id: sessionId,
      metadata: { event: 'help_resolved', user_id: 'resolve-user', admin_id: 'resolver' },
    });
    expect((await rowOf(sessionId, 'resolve-user')).help_state).toBe('resolved');

    // Again: 204 and no second event (a later positive marker proves it: a session_started event).
    const before = dashboard.frames.length;
    expect((await call(`/admin/sessions/${sessionId}/resolve`, admin, 'POST')).status).toBe(204);
    await askForHelp('marker-user');
    await dashboard.waitFor((frame) => frame.metadata?.event === 'session_started', 5_000, before);
    expect(
      dashboard.frames.slice(before).filter((frame: Frame) => frame.metadata?.event === 'help_resolved'),
    ).toEqual([]);

    expect(
      (await call('/admin/sessions/0123456789abcdef0123456789abcdef/resolve', admin, 'POST')).status,
    ).toBe(404);
    // A session nobody asked help for has nothing to resolve.
    const plain = await connect(userToken('no-help-user'));
    plain.send({ type: 'model_select', model_id: 'demo' });
    const selected = await plain.waitFor(
      (frame) => frame.type === 'connection_status' && !!frame.model_id,
      5_000,
      1,
    );
    const conflict = await call(`/admin/sessions/${selected.session_id}/resolve`, admin, 'POST');
    expect(conflict.status).toBe(409);
    expect(((await conflict.json()) as any).code).toBe('CONFLICT');
    expect(
      (await call(`/admin/sessions/${sessionId}/resolve`, userToken('resolve-user'), 'POST')).status,
    ).toBe(403);
    expect((await call(`/admin/sessions/${sessionId}/resolve`, undefined, 'POST')).status).toBe(401);
    expect((await call(`/admin/sessions/${sessionId}/resolve?force=1`, admin, 'POST')).status).toBe(400);
  });

  it('help_state and user_id_contains filters; invalid values are 400; legacy documents read a derived state', async () => {
    const admin = adminToken('filterer');
    const { sessionId: openId } = await askForHelp('Filter-Alpha-1');
    const { sessionId: resolvedId } = await askForHelp('filter-beta-2');
    expect((await call(`/admin/sessions/${resolvedId}/resolve`, admin, 'POST')).status).toBe(204);
    await t.db.collection('sessions').insertOne({
      _id: 'legacy0000000000000000000000help' as never,
      uid: 'filter-legacy',
      msgs: [],
      ts: new Date(),
      lastActivity: new Date(),
      helpRequested: true,
      adminAssisted: false,
    });
    // Written by an earlier version: a takeover nobody asked for got a help state anyway.
    await t.db.collection('sessions').insertOne({
      _id: 'unasked00000000000000000000000ta' as never,
      uid: 'filter-unasked',
      ts: new Date(),
      lastActivity: new Date(),
      helpRequested: false,
      adminAssisted: true,
      helpState: 'resolved',
    });

    const ids = async (query: string) =>
      ((await (await call(`/admin/sessions?${query}`, admin)).json()) as any[]).map((row) => row.session_id);
    expect(await ids('user_id_contains=FILTER&help_state=open')).toEqual(
      expect.arrayContaining([openId, 'legacy0000000000000000000000help']),
    );
    expect(await ids('user_id_contains=FILTER&help_state=open')).not.toContain(resolvedId);
    expect(await ids('user_id_contains=filter&help_state=resolved')).toEqual([resolvedId]);
    expect(await ids('user_id_contains=alpha')).toEqual([openId]);
    expect(await ids('user_id_contains=.*')).toEqual([]); // literal text, not a pattern
    const legacy = ((await (await call('/admin/sessions?user_id=filter-legacy', admin)).json()) as any[])[0];
    expect(legacy).toMatchObject({ help_requested: true, help_state: 'open' });
    const unasked = (
      (await (await call('/admin/sessions?user_id=filter-unasked', admin)).json()) as any[]
    )[0];
    expect(unasked).toMatchObject({ help_requested: false, admin_assisted: true });
    expect(unasked).not.toHaveProperty('help_state');
    for (const state of ['open', 'assisted', 'resolved'])
      expect(await ids(`user_id_contains=filter&help_state=${state}`)).not.toContain(
        'unasked00000000000000000000000ta',
      );
    const helpCount = await call('/admin/sessions?help_state=open&user_id_contains=filter', admin);
    expect(helpCount.headers.get('x-total-count')).toBe('2');

    for (const query of [
      'help_state=closed',
      'help_state=open&help_state=resolved',
      'help_state[$ne]=open',
      `user_id_contains=${'x'.repeat(129)}`,
      'user_id_contains[$regex]=a',
    ]) {
      const response = await call(`/admin/sessions?${query}`, admin);
      expect([query, response.status]).toEqual([query, 400]);
    }
  });

  it('GET /admin/canned-replies serves the configured list to admins only', async () => {
    const response = await call('/admin/canned-replies', adminToken('canner'));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ replies: CANNED });
    expect((await call('/admin/canned-replies', userToken('u'))).status).toBe(403);
    expect((await call('/admin/canned-replies', undefined)).status).toBe(401);
    expect((await call('/admin/canned-replies?x=1', adminToken('canner'))).status).toBe(400);
  });

  it('PATCH /sessions/:id renames (owner only, encrypted at rest); malformed, oversized, foreign are refused', async () => {
    const { sessionId } = await askForHelp('renamer');
    const owner = userToken('renamer');
    const renamed = await call(`/sessions/${sessionId}`, owner, 'PATCH', { name: '  Billing question  ' });
    expect(renamed.status).toBe(204);
    const list = (await (await call('/sessions', owner)).json()) as any;
    expect(list.sessions.find((row: any) => row.session_id === sessionId).name).toBe('Billing question');
    expect(((await (await call(`/sessions/${sessionId}`, owner)).json()) as any).name).toBe(
      'Billing question',
    );
    const stored = await t.stored(sessionId);
    expect(stored!.nmEnc).toBe(true);
    expect(stored!.nm).not.toContain('Billing');

    const bad: [unknown, string][] = [
      ['not json', 'JSON'],
      [[], 'JSON object'],
      [{}, 'name is required'],
      [{ name: 42 }, 'name must be a string'],
      [{ name: '   ' }, 'must not be empty'],
      [{ name: 'x'.repeat(51) }, 'at most 50 characters'],
      [{ name: 'two\nlines' }, 'one line'],
      [{ name: 'ok', nm: 'x' }, 'unknown field nm'],
      [{ name: { $set: 'x' } }, 'name must be a string'],
    ];
    for (const [body, message] of bad) {
      const response = await call(`/sessions/${sessionId}`, owner, 'PATCH', body);
      const json = (await response.json()) as any;
      expect([body, response.status, json.code]).toEqual([body, 400, 'BAD_REQUEST']);
      expect(json.message).toContain(message);
    }
    // Fifty characters are fine, counted as characters (not bytes or UTF-16 units).
    expect((await call(`/sessions/${sessionId}`, owner, 'PATCH', { name: '😀'.repeat(50) })).status).toBe(
      204,
    );
    const huge = await call(`/sessions/${sessionId}`, owner, 'PATCH', { name: 'x'.repeat(2_000_000) });
    expect(huge.status).toBe(413);
    expect((await call(`/sessions/${sessionId}`, undefined, 'PATCH', { name: 'x' })).status).toBe(401);
    expect((await call(`/sessions/${sessionId}`, userToken('intruder'), 'PATCH', { name: 'x' })).status).toBe(
      404,
    );
    expect((await call(`/sessions/${sessionId}`, adminToken('boss'), 'PATCH', { name: 'x' })).status).toBe(
      404,
    );
    expect((await call('/sessions/unknown-session-id', owner, 'PATCH', { name: 'x' })).status).toBe(404);
    expect(((await (await call(`/sessions/${sessionId}`, owner)).json()) as any).name).toBe('😀'.repeat(50));
  });

  it('DELETE /sessions/:id ends it, hides it from the owner, revokes the share link; admins keep it', async () => {
    const { user, sessionId } = await askForHelp('deleter');
    const owner = userToken('deleter');
    const share = (await (await call(`/sessions/${sessionId}/share`, owner, 'POST')).json()) as any;
    expect((await call(`/shared/${share.share_token}`, undefined)).status).toBe(200);

    expect((await call(`/sessions/${sessionId}`, userToken('other'), 'DELETE')).status).toBe(404);
    expect((await call(`/sessions/${sessionId}`, adminToken('boss'), 'DELETE')).status).toBe(404);
    expect((await call(`/sessions/${sessionId}`, undefined, 'DELETE')).status).toBe(401);

    const deleted = await call(`/sessions/${sessionId}`, owner, 'DELETE');
    expect(deleted.status).toBe(204);
    const ended = await user.waitFor(
      (frame) => frame.type === 'notification' && frame.metadata?.reason === 'session_ended',
    );
    expect(ended.session_id).toBe(sessionId);
    const list = (await (await call('/sessions', owner)).json()) as any;
    expect(list.sessions.map((row: any) => row.session_id)).not.toContain(sessionId);
    expect((await call(`/sessions/${sessionId}`, owner)).status).toBe(404);
    expect((await call(`/shared/${share.share_token}`, undefined)).status).toBe(404);
    expect((await call(`/sessions/${sessionId}/share`, owner, 'POST')).status).toBe(404);
    expect((await call(`/sessions/${sessionId}`, owner, 'DELETE')).status).toBe(204); // idempotent

    const forAdmin = await call(`/admin/sessions/${sessionId}`, adminToken('boss'));
    expect(forAdmin.status).toBe(200);
    expect(((await forAdmin.json()) as any).is_active).toBe(false);
    expect(await rowOf(sessionId, 'deleter')).toBeDefined();
  });
});

describe('admin budgets: reads and actions are limited separately', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ ADMIN_RATE_LIMIT: '2', ADMIN_READ_RATE_LIMIT: '4', ADMIN_RATE_WINDOW: '1h' });
  });
  afterAll(async () => t?.close());

  it('GETs use ADMIN_READ_RATE_LIMIT, actions ADMIN_RATE_LIMIT; neither uses up the other', async () => {
    const admin = adminToken('budget-admin');
    const request = (path: string, method = 'GET') =>
      fetch(`${t.baseUrl}${path}`, { method, headers: { Authorization: `Bearer ${admin}` } });
    // Actions first: two allowed (404 for unknown sessions still counts), the third refused.
    expect((await request('/admin/takeover/none1', 'POST')).status).toBe(404);
    expect((await request('/admin/sessions/none1/resolve', 'POST')).status).toBe(404);
    const refusedAction = await request('/admin/takeover/none2', 'POST');
    expect(refusedAction.status).toBe(429);
    expect(((await refusedAction.json()) as any).message).toBe('Too many admin requests');
    // Reads still have their own budget of four.
    for (const path of ['/admin/sessions', '/admin/metrics', '/admin/canned-replies', '/admin/sessions'])
      expect([path, (await request(path)).status]).toEqual([path, 200]);
    const refusedRead = await request('/admin/metrics');
    expect(refusedRead.status).toBe(429);
    expect(Number(refusedRead.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await refusedRead.json()) as any).message).toBe('Too many admin reads');
    // Another admin has budgets of their own.
    const other = await fetch(`${t.baseUrl}/admin/sessions`, {
      headers: { Authorization: `Bearer ${adminToken('budget-other')}` },
    });
    expect(other.status).toBe(200);
  });
});
