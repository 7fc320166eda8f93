/* Admin view: metrics, chart, session table with filters, live socket events, drill-down, takeover. */
(function () {
  'use strict';
  const C = window.Chatbox;
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';

  const ui = {
    status: $('status'),
    conn: $('conn'),
    connLabel: $('conn-label'),
    range: $('range'),
    auto: $('auto-refresh'),
    refresh: $('refresh'),
    cards: $('cards'),
    chart: $('chart'),
    rows: $('rows'),
    filters: $('filters'),
    user: $('f-user'),
    statusFilter: $('f-status'),
    help: $('f-help'),
    assisted: $('f-assisted'),
    sort: $('f-sort'),
    order: $('f-order'),
    limit: $('f-limit'),
    prev: $('prev'),
    next: $('next'),
    pageInfo: $('page-info'),
    drill: $('drill'),
    drillUser: $('drill-user'),
    drillBack: $('drill-back'),
    toasts: $('toasts'),
  };

  const state = {
    token: null,
    offset: 0,
    total: 0,
    drillUser: null,
    flash: new Set(),
    timer: null,
    socket: null,
    backoffMs: 1000,
    refreshSoon: null,
  };
  window.__chatboxAdmin = {
    get socket() {
      return state.socket;
    },
  };

  const CARDS = [
    ['active_sessions', 'Active sessions'],
    ['total_sessions', 'Sessions'],
    ['avg_concurrent', 'Avg concurrent'],
    ['max_concurrent', 'Max concurrent'],
    ['message_count', 'Messages'],
    ['total_tokens', 'Tokens'],
    ['avg_response_time', 'Avg response', 'ms'],
    ['max_response_time', 'Max response', 'ms'],
    ['help_requested_count', 'Help requests'],
    ['admin_assisted_count', 'Admin assisted'],
  ];

  function setStatus(text, isError) {
    ui.status.hidden = !text;
    ui.status.textContent = text || '';
    ui.status.classList.toggle('error', Boolean(isError));
  }

  function range() {
    const hours = Number(ui.range.value) || 24;
    const end = new Date();
    const start = new Date(end.getTime() - hours * 3600 * 1000);
    return { start, end, hours };
  }

  function formatNumber(value, unit) {
    const number = Number(value);
    if (!Number.isFinite(number)) return '—';
    if (unit === 'ms') return number >= 1000 ? `${(number / 1000).toFixed(1)} s` : `${Math.round(number)} ms`;
    return Number.isInteger(number) ? number.toLocaleString() : number.toFixed(2);
  }

  // ---------- metrics ----------

  async function loadMetrics() {
    const { start, end } = range();
    const query = new URLSearchParams({ start_time: start.toISOString(), end_time: end.toISOString() });
    try {
      const { data } = await C.api(`/admin/metrics?${query}`, { token: state.token });
      ui.cards.replaceChildren(
        ...CARDS.map(([key, label, unit]) =>
          C.el(
            'div',
            { class: 'card', 'data-metric': key },
            C.el('span', { class: 'card-value', text: formatNumber(data[key], unit) }),
            C.el('span', { class: 'card-label', text: label }),
          ),
        ),
      );
    } catch (error) {
      ui.cards.replaceChildren(
        C.el('p', {
          class: 'muted',
          text:
            error.status === 404
              ? 'Metrics are not available on this server yet.'
              : `Metrics: ${error.message}`,
        }),
      );
      if (error.status === 401 || error.status === 403) throw error;
    }
  }

  /** Accepts the timeseries in a few reasonable shapes: an array, or {buckets|points|series|data:[...]}. */
  function seriesOf(data) {
    const list = Array.isArray(data)
      ? data
      : (data && (data.buckets || data.points || data.series || data.data || data.timeseries)) || [];
    const pick = (item, keys) => {
      for (const key of keys) if (item[key] !== undefined && item[key] !== null) return item[key];
      return undefined;
    };
    return list
      .map((item) => ({
        time: new Date(pick(item, ['start', 'time', 'timestamp', 'bucket', 't', 'bucket_start'])).getTime(),
        concurrency: Number(
          pick(item, ['max_concurrent', 'concurrency', 'concurrent', 'avg_concurrent']) || 0,
        ),
        traffic: Number(
          pick(item, ['sessions', 'new_sessions', 'session_count', 'started', 'sessions_started']) || 0,
        ),
      }))
      .filter((point) => Number.isFinite(point.time));
  }

  function svg(tag, attributes) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, String(value));
    return node;
  }

  function drawChart(points) {
    const width = 800;
    const height = 220;
    const pad = { left: 36, right: 12, top: 12, bottom: 26 };
    const root = svg('svg', {
      viewBox: `0 0 ${width} ${height}`,
      class: 'chart-svg',
      preserveAspectRatio: 'none',
    });
    if (points.length === 0) {
      const text = svg('text', {
        x: width / 2,
        y: height / 2,
        'text-anchor': 'middle',
        class: 'chart-empty',
      });
      text.textContent = 'No data for this range';
      root.append(text);
      ui.chart.replaceChildren(root);
      return;
    }
    const maxY = Math.max(1, ...points.map((p) => Math.max(p.concurrency, p.traffic)));
    const t0 = points[0].time;
    const t1 = points[points.length - 1].time;
    const x = (t) => pad.left + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (width - pad.left - pad.right);
    const y = (v) => height - pad.bottom - (v / maxY) * (height - pad.top - pad.bottom);
    for (const fraction of [0, 0.5, 1]) {
      const value = Math.round(maxY * fraction);
      root.append(
        svg('line', { x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value), class: 'chart-grid' }),
      );
      const label = svg('text', {
        x: pad.left - 6,
        y: y(value) + 4,
        'text-anchor': 'end',
        class: 'chart-axis',
      });
      label.textContent = String(value);
      root.append(label);
    }
    const barWidth = Math.max(2, ((width - pad.left - pad.right) / points.length) * 0.6);
    for (const point of points) {
      root.append(
        svg('rect', {
          x: x(point.time) - barWidth / 2,
          y: y(point.traffic),
          width: barWidth,
          height: Math.max(0, height - pad.bottom - y(point.traffic)),
          class: 'chart-bar',
        }),
      );
    }
    const line = points.map(
      (p, i) => `${i === 0 ? 'M' : 'L'}${x(p.time).toFixed(1)},${y(p.concurrency).toFixed(1)}`,
    );
    root.append(svg('path', { d: line.join(' '), class: 'chart-line' }));
    for (const [time, anchor] of [
      [t0, 'start'],
      [t1, 'end'],
    ]) {
      const label = svg('text', { x: x(time), y: height - 6, 'text-anchor': anchor, class: 'chart-axis' });
      label.textContent = C.formatTime(time);
      root.append(label);
    }
    ui.chart.replaceChildren(root);
  }

  async function loadChart() {
    const { start, end } = range();
    // The server picks the bucket size for the range.
    const query = new URLSearchParams({ start_time: start.toISOString(), end_time: end.toISOString() });
    try {
      const { data } = await C.api(`/admin/metrics/timeseries?${query}`, { token: state.token });
      drawChart(seriesOf(data));
    } catch (error) {
      ui.chart.replaceChildren(
        C.el('p', {
          class: 'muted',
          text:
            error.status === 404
              ? 'The chart is not available on this server yet.'
              : `Chart: ${error.message}`,
        }),
      );
    }
  }

  // ---------- sessions table ----------

  function sessionsQuery() {
    const query = new URLSearchParams();
    if (ui.user.value.trim()) query.set('user_id', ui.user.value.trim());
    if (ui.statusFilter.value) query.set('status', ui.statusFilter.value);
    if (ui.help.value) query.set('help_requested', ui.help.value);
    if (ui.assisted.value) query.set('admin_assisted', ui.assisted.value);
    query.set('sort_by', ui.sort.value);
    query.set('sort_order', ui.order.value);
    query.set('limit', ui.limit.value);
    query.set('offset', String(state.offset));
    return query;
  }

  function rowFor(row) {
    const id = row.session_id || row.id;
    const badges = C.el('span', { class: 'badges' });
    if (row.help_requested)
      badges.append(C.el('span', { class: 'badge badge-help', text: 'Help requested' }));
    if (row.assisting_admin_name)
      badges.append(
        C.el('span', { class: 'badge badge-assisted', text: `Assisted by ${row.assisting_admin_name}` }),
      );
    else if (row.admin_assisted)
      badges.append(C.el('span', { class: 'badge badge-assisted', text: 'Admin Assisted' }));
    const userButton = C.el('button', {
      type: 'button',
      class: 'link-btn',
      text: row.user_id,
      title: `All sessions of ${row.user_id}`,
      onclick: () => drillDown(row.user_id),
    });
    const takeover = row.is_active
      ? C.el('button', {
          type: 'button',
          class: 'btn btn-small btn-primary',
          text: 'Take over',
          'aria-label': `Take over ${row.name || 'Untitled Chat'} of ${row.user_id}`,
          onclick: () => void takeOver(id),
        })
      : null;
    const tr = C.el(
      'tr',
      { 'data-session-id': id, class: row.help_requested && row.is_active ? 'row-help' : '' },
      C.el('td', { 'data-label': 'User' }, userButton),
      C.el(
        'td',
        { 'data-label': 'Conversation' },
        C.el('span', { text: row.name || 'Untitled Chat' }),
        badges,
      ),
      C.el(
        'td',
        { 'data-label': 'Status' },
        C.el('span', {
          class: `status-pill ${row.is_active ? 'status-active' : 'status-ended'}`,
          text: row.is_active ? 'Active' : 'Ended',
        }),
      ),
      C.el('td', { 'data-label': 'Started', text: C.formatTime(row.start_time) }),
      C.el('td', { 'data-label': 'Last activity', text: C.relativeTime(row.last_activity) }),
      C.el('td', { class: 'num', 'data-label': 'Msgs', text: formatNumber(row.message_count) }),
      C.el('td', { class: 'num', 'data-label': 'Tokens', text: formatNumber(row.total_tokens) }),
      C.el('td', {
        class: 'num',
        'data-label': 'Avg resp.',
        text: formatNumber(row.avg_response_time, 'ms'),
      }),
      C.el('td', { class: 'actions' }, takeover),
    );
    if (state.flash.has(id)) flashRow(tr, id);
    return tr;
  }

  function flashRow(tr, id) {
    tr.classList.remove('flash');
    void tr.offsetWidth;
    tr.classList.add('flash');
    state.flash.delete(id);
  }

  async function loadSessions() {
    const path = state.drillUser
      ? `/admin/users/${encodeURIComponent(state.drillUser)}/sessions?${sessionsQuery()}`
      : `/admin/sessions?${sessionsQuery()}`;
    try {
      const { data, headers } = await C.api(path, { token: state.token });
      const rows = Array.isArray(data) ? data : (data && data.sessions) || [];
      const total = Number(headers.get('X-Total-Count'));
      state.total =
        Number.isFinite(total) && headers.get('X-Total-Count') !== null ? total : state.offset + rows.length;
      ui.rows.replaceChildren(...rows.map(rowFor));
      if (rows.length === 0)
        ui.rows.append(
          C.el('tr', {}, C.el('td', { colspan: '9', class: 'muted', text: 'No sessions match.' })),
        );
      const limit = Number(ui.limit.value);
      const page = Math.floor(state.offset / limit) + 1;
      const pages = Math.max(1, Math.ceil(state.total / limit));
      ui.pageInfo.textContent = `Page ${page} of ${pages} · ${state.total} session${state.total === 1 ? '' : 's'}`;
      ui.prev.disabled = state.offset === 0;
      ui.next.disabled = state.offset + limit >= state.total;
    } catch (error) {
      ui.rows.replaceChildren(
        C.el(
          'tr',
          {},
          C.el('td', {
            colspan: '9',
            class: 'muted',
            text:
              error.status === 404 && !state.drillUser
                ? 'The admin sessions API is not available on this server yet.'
                : error.message,
          }),
        ),
      );
      ui.pageInfo.textContent = '';
      ui.prev.disabled = true;
      ui.next.disabled = true;
      if (error.status === 401 || error.status === 403) throw error;
    }
  }

  function drillDown(userId) {
    state.drillUser = userId;
    state.offset = 0;
    ui.drill.hidden = false;
    ui.drillUser.textContent = userId;
    void loadSessions();
  }

  async function takeOver(sessionId) {
    try {
      await C.api(`/admin/takeover/${encodeURIComponent(sessionId)}`, { token: state.token, method: 'POST' });
      window.location.href = C.pageUrl('chat', { admin: 'true', session_id: sessionId });
    } catch (error) {
      toast(
        error.status === 404 && (!error.body || error.body.code !== 'NOT_FOUND')
          ? 'Takeover is not available on this server yet.'
          : error.message,
        'error',
      );
    }
  }

  async function refreshAll() {
    try {
      await Promise.all([loadMetrics(), loadChart(), loadSessions()]);
    } catch (error) {
      if (error.status === 401) setStatus('Your sign-in has expired. Reopen the admin link.', true);
      else if (error.status === 403) setStatus('This page needs an admin account.', true);
    }
  }

  function scheduleAuto() {
    clearInterval(state.timer);
    if (ui.auto.checked) state.timer = setInterval(() => void refreshAll(), 15000);
  }

  function refreshSoon() {
    clearTimeout(state.refreshSoon);
    state.refreshSoon = setTimeout(
      () => void Promise.all([loadSessions(), loadMetrics()]).catch(() => undefined),
      250,
    );
  }

  function toast(text, kind) {
    const node = C.el('div', { class: `toast${kind ? ` toast-${kind}` : ''}`, role: 'status', text });
    ui.toasts.append(node);
    setTimeout(() => node.remove(), 6000);
  }

  // ---------- live events ----------

  const EVENT_TEXT = {
    help_requested: (m) =>
      `Help requested by ${m.user_id || 'a user'}${m.session_name ? ` — “${m.session_name}”` : ''}`,
    session_started: (m) => `New session from ${m.user_id || 'a user'}`,
    session_ended: () => 'A session ended',
    takeover_started: (m) => `${m.admin_name || 'An admin'} took over a session`,
    takeover_ended: (m) => `${m.admin_name || 'An admin'} left a session`,
  };

  function onNotification(frame) {
    const metadata = frame.metadata || {};
    const event = metadata.event;
    if (!event || !EVENT_TEXT[event]) return;
    const id = frame.session_id;
    if (event === 'help_requested' && id) {
      toast(EVENT_TEXT[event](metadata), 'help');
      const tr = ui.rows.querySelector(`tr[data-session-id="${CSS.escape(id)}"]`);
      if (tr) {
        tr.classList.add('row-help');
        flashRow(tr, id);
      } else state.flash.add(id);
    }
    refreshSoon();
  }

  function connectLive() {
    const socket = new WebSocket(`${C.wsBase}?${new URLSearchParams({ token: state.token })}`);
    state.socket = socket;
    ui.conn.dataset.state = 'connecting';
    socket.addEventListener('open', () => {
      state.backoffMs = 1000;
      ui.conn.dataset.state = 'connected';
      ui.connLabel.textContent = 'Live';
    });
    socket.addEventListener('message', (event) => {
      try {
        const frame = JSON.parse(event.data);
        if (frame.type === 'notification') onNotification(frame);
      } catch {
        /* ignore malformed frames */
      }
    });
    socket.addEventListener('close', (event) => {
      if (state.socket !== socket) return;
      state.socket = null;
      if (event.code === 4001 || event.code === 4003) {
        ui.conn.dataset.state = 'offline';
        ui.connLabel.textContent = 'Live updates off';
        return;
      }
      const delay = state.backoffMs;
      state.backoffMs = Math.min(state.backoffMs * 2, 30000);
      ui.conn.dataset.state = 'reconnecting';
      ui.connLabel.textContent = 'Live updates: reconnecting…';
      setTimeout(connectLive, delay);
    });
  }

  async function main() {
    state.token = await C.resolveToken();
    if (!state.token) {
      setStatus('Sign-in required: open this page with an admin token.', true);
      ui.conn.dataset.state = 'offline';
      ui.connLabel.textContent = 'Signed out';
      return;
    }
    if (!C.isAdminToken(state.token)) setStatus('This page needs an admin account.', true);
    const reload = () => {
      state.offset = 0;
      void loadSessions();
    };
    ui.filters.addEventListener('change', reload);
    ui.filters.addEventListener('submit', (event) => {
      event.preventDefault();
      reload();
    });
    let userTimer = null;
    ui.user.addEventListener('input', () => {
      clearTimeout(userTimer);
      userTimer = setTimeout(reload, 400);
    });
    ui.prev.addEventListener('click', () => {
      state.offset = Math.max(0, state.offset - Number(ui.limit.value));
      void loadSessions();
    });
    ui.next.addEventListener('click', () => {
      state.offset += Number(ui.limit.value);
      void loadSessions();
    });
    ui.drillBack.addEventListener('click', () => {
      state.drillUser = null;
      ui.drill.hidden = true;
      reload();
    });
    ui.range.addEventListener(
      'change',
      () => void Promise.all([loadMetrics(), loadChart()]).catch(() => undefined),
    );
    ui.refresh.addEventListener('click', () => void refreshAll());
    ui.auto.addEventListener('change', scheduleAuto);
    await refreshAll();
    scheduleAuto();
    connectLive();
  }

  void main();
})();
