/* Admin view: help queue, metrics, chart, session table with filters, live socket events, takeover. */
(function () {
  'use strict';
  const C = window.Chatbox;
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';

  /**
   * How often the dashboard reads. Live events patch the page in place at once; the reads they call
   * for are coalesced: the lists at most every `listGapMs`, the numbers every `metricsGapMs`, plus a
   * full refresh every `periodicMs` (auto-refresh). Reads have their own server budget
   * (ADMIN_READ_RATE_LIMIT); this pace stays far below it even with events every second.
   */
  const PACE = {
    listGapMs: 10_000,
    metricsGapMs: 30_000,
    periodicMs: 60_000,
    /** Typing in the search box and changing the selects: one read once they rest this long. */
    filterQuietMs: 400,
    /** Refresh reads at once; more clicks until they rest this long read nothing more. */
    refreshQuietMs: 1_000,
  };
  const DEFAULT_RETRY_MS = 30_000;

  const ui = {
    status: $('status'),
    notice: $('notice'),
    announcer: $('announcer'),
    conn: $('conn'),
    connLabel: $('conn-label'),
    range: $('range'),
    auto: $('auto-refresh'),
    refresh: $('refresh'),
    alerts: $('alerts-btn'),
    alertsText: $('alerts-text'),
    sound: $('sound-toggle'),
    cards: $('cards'),
    chart: $('chart'),
    queue: $('queue'),
    queueEmpty: $('queue-empty'),
    queueCount: $('queue-count'),
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
    me: null,
    offset: 0,
    total: 0,
    drillUser: null,
    /** Rows on screen by session id, patched in place by live events. */
    rows: new Map(),
    queue: new Map(),
    metrics: null,
    flash: new Set(),
    socket: null,
    backoffMs: 1000,
    fatal: false,
    pausedUntil: 0,
    reads: {},
    periodic: null,
    events: 0,
  };
  window.__chatboxAdmin = {
    get socket() {
      return state.socket;
    },
    /** Live events handled so far (tests wait on it). */
    get events() {
      return state.events;
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

  const HELP_TEXT = { open: 'Waiting for help', assisted: 'Being helped', resolved: 'Help resolved' };

  function setStatus(text, isError) {
    ui.status.hidden = !text;
    ui.status.textContent = text || '';
    ui.status.classList.toggle('error', Boolean(isError));
  }

  function announce(text) {
    ui.announcer.textContent = text;
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

  // ---------- reading without exhausting the budget ----------

  /** A refused or failed read keeps what is on screen; fatal answers (401/403) stop the page. */
  function readFailed(error, retry) {
    if (error.status === 401 || error.status === 403) {
      fatal(error.status === 401 ? C.TOKEN_TEXT[C.tokenRefusal(error)] : 'This page needs an admin account.');
      return true;
    }
    if (error.status === 429 || error.status === 0 || error.status >= 500) {
      const waitMs =
        error.status === 429
          ? Math.max(1000, Number(error.body && error.body.retry_after_ms) || DEFAULT_RETRY_MS)
          : 10_000;
      state.pausedUntil = Math.max(state.pausedUntil, Date.now() + waitMs);
      const seconds = Math.ceil(waitMs / 1000);
      ui.notice.textContent =
        error.status === 429
          ? `Updates paused for ${seconds} s: the server asked this dashboard to slow down. The figures shown stay as they were.`
          : `The server cannot be reached; trying again in ${seconds} s. The figures shown stay as they were.`;
      ui.notice.hidden = false;
      setTimeout(retry, waitMs);
      return true;
    }
    return false;
  }

  function readSucceeded() {
    if (Date.now() >= state.pausedUntil) ui.notice.hidden = true;
  }

  /**
   * Runs `load` (a named read) now, or — when `coalesce` — no sooner than `gapMs` after its last
   * run; requests meanwhile are merged into one. While the server asked us to wait, everything waits.
   */
  function read(name, load, gapMs, coalesce) {
    const entry = state.reads[name] || (state.reads[name] = { last: 0, timer: null });
    const now = Date.now();
    const earliest = Math.max(state.pausedUntil, coalesce ? entry.last + gapMs : 0);
    if (entry.timer) {
      if (coalesce) return;
      clearTimeout(entry.timer);
      entry.timer = null;
    }
    if (earliest > now) {
      entry.timer = setTimeout(() => {
        entry.timer = null;
        read(name, load, gapMs, false);
      }, earliest - now);
      return;
    }
    entry.last = now;
    void load();
  }

  const reload = {
    list: (coalesce) => read('list', loadSessions, PACE.listGapMs, coalesce),
    queue: (coalesce) => read('queue', loadQueue, PACE.listGapMs, coalesce),
    metrics: (coalesce) => read('metrics', loadMetrics, PACE.metricsGapMs, coalesce),
    chart: (coalesce) => read('chart', loadChart, PACE.metricsGapMs, coalesce),
  };

  function refreshAll() {
    for (const load of Object.values(reload)) load(false);
  }

  /**
   * One run of `action` per burst of triggers (a burst ends when they rest for `quietMs`): with
   * `leading` the first trigger runs it at once and the rest of the burst is dropped (Refresh: what
   * it reads is fresh already); otherwise it runs when the burst ends (filters: the last state counts).
   */
  function perBurst(action, quietMs, leading) {
    let timer = null;
    const trigger = () => {
      const idle = timer === null;
      clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        if (!leading) action();
      }, quietMs);
      if (leading && idle) action();
    };
    /** Runs a waiting trailing call now (a submitted form does not wait for the burst to end). */
    trigger.now = () => {
      clearTimeout(timer);
      timer = null;
      action();
    };
    return trigger;
  }

  // ---------- metrics ----------

  function renderCards() {
    const data = state.metrics;
    if (!data) return;
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
  }

  async function loadMetrics() {
    if (state.fatal) return;
    const { start, end } = range();
    const query = new URLSearchParams({ start_time: start.toISOString(), end_time: end.toISOString() });
    try {
      const { data } = await C.api(`/admin/metrics?${query}`, { token: state.token });
      state.metrics = data;
      renderCards();
      readSucceeded();
    } catch (error) {
      if (readFailed(error, () => reload.metrics(false))) return;
      ui.cards.replaceChildren(C.el('p', { class: 'muted', text: `Metrics: ${error.message}` }));
    }
  }

  /** Live events move the obvious numbers at once; the next metrics read corrects them. */
  function bumpMetric(key, delta) {
    if (!state.metrics || !Number.isFinite(Number(state.metrics[key]))) return;
    state.metrics[key] = Math.max(0, Number(state.metrics[key]) + delta);
    renderCards();
  }

  /** The timeseries: an array, or {buckets|points|series|data:[...]}. */
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
          rx: 2,
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
    if (state.fatal) return;
    const { start, end } = range();
    // The server picks the bucket size for the range.
    const query = new URLSearchParams({ start_time: start.toISOString(), end_time: end.toISOString() });
    try {
      const { data } = await C.api(`/admin/metrics/timeseries?${query}`, { token: state.token });
      drawChart(seriesOf(data));
      readSucceeded();
    } catch (error) {
      if (readFailed(error, () => reload.chart(false))) return;
      ui.chart.replaceChildren(C.el('p', { class: 'muted', text: `Chart: ${error.message}` }));
    }
  }

  // ---------- help queue ----------

  function myName() {
    return state.me ? state.me.name || state.me.user_id : '';
  }

  function queueItem(row) {
    const id = row.session_id || row.id;
    const assisted = row.help_state === 'assisted';
    return C.el(
      'li',
      { class: `queue-item state-${row.help_state}`, 'data-session-id': id },
      C.el(
        'div',
        { class: 'queue-top' },
        C.el('span', { class: 'queue-user', text: row.user_id }),
        C.el('span', {
          class: `help-pill help-${row.help_state}`,
          text: assisted ? `With ${row.assisting_admin_name || 'an admin'}` : 'Waiting',
        }),
      ),
      C.el('span', { class: 'queue-name', text: row.name || 'Untitled Chat' }),
      C.el('span', {
        class: 'queue-meta',
        text: `Last activity ${C.relativeTime(row.last_activity)}`,
      }),
      C.el(
        'div',
        { class: 'queue-actions' },
        !assisted || row.assisting_admin_name === myName()
          ? C.el('button', {
              type: 'button',
              class: 'btn btn-small btn-primary',
              text: assisted ? 'Open chat' : 'Take over',
              'aria-label': `${assisted ? 'Open chat with' : 'Take over the chat of'} ${row.user_id}`,
              onclick: () => void takeOver(id),
            })
          : null,
        C.el('button', {
          type: 'button',
          class: 'btn btn-small',
          text: 'Resolve',
          'aria-label': `Resolve the help request of ${row.user_id}`,
          onclick: () => void resolve(id),
        }),
      ),
    );
  }

  function renderQueue() {
    const entries = [...state.queue.values()].filter(
      (row) => row.is_active && (row.help_state === 'open' || row.help_state === 'assisted'),
    );
    // Waiting first, then the oldest activity first.
    entries.sort(
      (a, b) =>
        (a.help_state === 'open' ? 0 : 1) - (b.help_state === 'open' ? 0 : 1) ||
        new Date(a.last_activity).getTime() - new Date(b.last_activity).getTime(),
    );
    ui.queue.replaceChildren(...entries.map(queueItem));
    ui.queueEmpty.hidden = entries.length > 0;
    const waiting = entries.filter((row) => row.help_state === 'open').length;
    ui.queueCount.textContent = String(waiting);
    ui.queueCount.classList.toggle('count-hot', waiting > 0);
    document.title = waiting > 0 ? `(${waiting}) Chat admin` : 'Chat admin';
  }

  async function loadQueue() {
    if (state.fatal) return;
    const query = new URLSearchParams({
      help_requested: 'true',
      status: 'active',
      sort_by: 'last_activity',
      sort_order: 'asc',
      limit: '100',
    });
    try {
      const { data } = await C.api(`/admin/sessions?${query}`, { token: state.token });
      state.queue = new Map((Array.isArray(data) ? data : []).map((row) => [row.session_id || row.id, row]));
      renderQueue();
      readSucceeded();
    } catch (error) {
      readFailed(error, () => reload.queue(false));
    }
  }

  // ---------- sessions table ----------

  function sessionsQuery() {
    const query = new URLSearchParams();
    if (ui.user.value.trim()) query.set('user_id_contains', ui.user.value.trim());
    if (ui.statusFilter.value) query.set('status', ui.statusFilter.value);
    if (['open', 'assisted', 'resolved'].includes(ui.help.value)) query.set('help_state', ui.help.value);
    if (ui.help.value === 'requested') query.set('help_requested', 'true');
    if (ui.help.value === 'none') query.set('help_requested', 'false');
    if (ui.assisted.value) query.set('admin_assisted', ui.assisted.value);
    query.set('sort_by', ui.sort.value);
    query.set('sort_order', ui.order.value);
    query.set('limit', ui.limit.value);
    query.set('offset', String(state.offset));
    return query;
  }

  function badgesOf(row) {
    const badges = C.el('span', { class: 'badges' });
    if (
      row.help_state &&
      HELP_TEXT[row.help_state] &&
      !(row.help_state === 'assisted' && row.assisting_admin_name)
    )
      badges.append(
        C.el('span', { class: `badge badge-help-${row.help_state}`, text: HELP_TEXT[row.help_state] }),
      );
    else if (!row.help_state && row.help_requested)
      badges.append(C.el('span', { class: 'badge badge-help-open', text: 'Help requested' }));
    if (row.assisting_admin_name)
      badges.append(
        C.el('span', { class: 'badge badge-assisted', text: `Assisted by ${row.assisting_admin_name}` }),
      );
    else if (row.admin_assisted)
      badges.append(C.el('span', { class: 'badge badge-muted', text: 'Admin assisted' }));
    return badges;
  }

  function rowFor(row) {
    const id = row.session_id || row.id;
    const userButton = C.el('button', {
      type: 'button',
      class: 'link-btn',
      text: row.user_id,
      title: `All sessions of ${row.user_id}`,
      onclick: () => drillDown(row.user_id),
    });
    const actions = C.el('div', { class: 'row-actions' });
    if (row.is_active)
      actions.append(
        C.el('button', {
          type: 'button',
          class: 'btn btn-small btn-primary',
          text: 'Take over',
          'aria-label': `Take over ${row.name || 'Untitled Chat'} of ${row.user_id}`,
          onclick: () => void takeOver(id),
        }),
      );
    if (row.help_state === 'open' || row.help_state === 'assisted')
      actions.append(
        C.el('button', {
          type: 'button',
          class: 'btn btn-small',
          text: 'Resolve',
          'aria-label': `Resolve the help request of ${row.user_id}`,
          onclick: () => void resolve(id),
        }),
      );
    const waiting = row.is_active && row.help_state === 'open';
    const tr = C.el(
      'tr',
      { 'data-session-id': id, class: waiting ? 'row-help' : '' },
      C.el('td', { 'data-label': 'User' }, userButton),
      C.el(
        'td',
        { 'data-label': 'Conversation' },
        C.el('span', { class: 'row-name', text: row.name || 'Untitled Chat' }),
        badgesOf(row),
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
      C.el('td', { class: 'actions' }, actions),
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

  /** Applies a live change to a row on screen and to the queue, without reading anything. */
  function patch(id, changes) {
    const apply = (target) => {
      Object.assign(target, changes);
      // An empty name means nobody assists any more: the key goes, as in the API's rows.
      if ('assisting_admin_name' in changes && !changes.assisting_admin_name)
        delete target.assisting_admin_name;
    };
    const row = state.rows.get(id);
    if (row) {
      apply(row);
      const tr = ui.rows.querySelector(`tr[data-session-id="${CSS.escape(id)}"]`);
      if (tr) tr.replaceWith(rowFor(row));
    }
    const queued = state.queue.get(id) || (row && { ...row });
    if (queued) {
      apply(queued);
      state.queue.set(id, queued);
      renderQueue();
    }
  }

  async function loadSessions() {
    if (state.fatal) return;
    const path = state.drillUser
      ? `/admin/users/${encodeURIComponent(state.drillUser)}/sessions?${sessionsQuery()}`
      : `/admin/sessions?${sessionsQuery()}`;
    try {
      const { data, headers } = await C.api(path, { token: state.token });
      const rows = Array.isArray(data) ? data : (data && data.sessions) || [];
      const total = Number(headers.get('X-Total-Count'));
      state.total =
        Number.isFinite(total) && headers.get('X-Total-Count') !== null ? total : state.offset + rows.length;
      state.rows = new Map(rows.map((row) => [row.session_id || row.id, row]));
      ui.rows.replaceChildren(...rows.map(rowFor));
      if (rows.length === 0)
        ui.rows.append(
          C.el('tr', {}, C.el('td', { colspan: '9', class: 'muted empty-row', text: 'No sessions match.' })),
        );
      const limit = Number(ui.limit.value);
      const page = Math.floor(state.offset / limit) + 1;
      const pages = Math.max(1, Math.ceil(state.total / limit));
      ui.pageInfo.textContent = `Page ${page} of ${pages} · ${state.total} session${state.total === 1 ? '' : 's'}`;
      ui.prev.disabled = state.offset === 0;
      ui.next.disabled = state.offset + limit >= state.total;
      readSucceeded();
    } catch (error) {
      if (readFailed(error, () => reload.list(false))) return;
      ui.rows.replaceChildren(
        C.el('tr', {}, C.el('td', { colspan: '9', class: 'muted', text: error.message })),
      );
      ui.pageInfo.textContent = '';
      ui.prev.disabled = true;
      ui.next.disabled = true;
    }
  }

  function drillDown(userId) {
    state.drillUser = userId;
    state.offset = 0;
    ui.drill.hidden = false;
    ui.drillUser.textContent = userId;
    reload.list(false);
  }

  async function takeOver(sessionId) {
    try {
      await C.api(`/admin/takeover/${encodeURIComponent(sessionId)}`, { token: state.token, method: 'POST' });
      window.location.href = C.pageUrl('chat', { admin: 'true', session_id: sessionId });
    } catch (error) {
      toast(error.message, 'error');
    }
  }

  async function resolve(sessionId) {
    try {
      await C.api(`/admin/sessions/${encodeURIComponent(sessionId)}/resolve`, {
        token: state.token,
        method: 'POST',
      });
      patch(sessionId, { help_state: 'resolved' });
      announce('Help request resolved.');
    } catch (error) {
      toast(error.message, 'error');
    }
  }

  function toast(text, kind) {
    const close = C.el(
      'button',
      { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' },
      C.icon('close', 16),
    );
    const node = C.el(
      'div',
      { class: `toast${kind ? ` toast-${kind}` : ''}`, role: 'status' },
      C.el('span', { text }),
      close,
    );
    close.addEventListener('click', () => node.remove());
    ui.toasts.append(node);
    setTimeout(() => node.remove(), 8000);
  }

  // ---------- alerts: desktop notification and sound ----------

  const ALERTS_KEY = 'chatbox_admin_alerts';
  const SOUND_KEY = 'chatbox_admin_sound';

  function stored(key) {
    try {
      return window.localStorage.getItem(key);
    } catch {
      return null;
    }
  }

  function store(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch {
      /* not kept */
    }
  }

  function alertsOn() {
    return 'Notification' in window && Notification.permission === 'granted' && stored(ALERTS_KEY) !== 'off';
  }

  function labelAlerts() {
    const supported = 'Notification' in window;
    ui.alerts.hidden = !supported;
    if (!supported) return;
    const on = alertsOn();
    ui.alerts.setAttribute('aria-pressed', String(on));
    ui.alertsText.textContent =
      Notification.permission === 'denied' ? 'Alerts blocked' : on ? 'Alerts on' : 'Desktop alerts';
    ui.alerts.disabled = Notification.permission === 'denied';
  }

  async function toggleAlerts() {
    if (Notification.permission === 'granted') store(ALERTS_KEY, alertsOn() ? 'off' : 'on');
    else if ((await Notification.requestPermission()) === 'granted') store(ALERTS_KEY, 'on');
    labelAlerts();
  }

  let audio = null;
  /** A short two-tone chime (Web Audio: no sound file to serve). */
  function chime() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const start = audio.currentTime;
      for (const [offset, frequency] of [
        [0, 880],
        [0.16, 1175],
      ]) {
        const oscillator = audio.createOscillator();
        const gain = audio.createGain();
        oscillator.type = 'sine';
        oscillator.frequency.value = frequency;
        gain.gain.setValueAtTime(0.0001, start + offset);
        gain.gain.exponentialRampToValueAtTime(0.2, start + offset + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.3);
        oscillator.connect(gain).connect(audio.destination);
        oscillator.start(start + offset);
        oscillator.stop(start + offset + 0.32);
      }
    } catch {
      /* no audio: the visual alert remains */
    }
  }

  function alertHelp(metadata, sessionId) {
    const who = metadata.user_id || 'A user';
    const what = metadata.session_name ? ` — “${metadata.session_name}”` : '';
    announce(`Help requested by ${who}${what}`);
    if (ui.sound.checked) chime();
    if (!alertsOn()) return;
    try {
      const notification = new Notification('Help requested', {
        body: `${who}${what}`,
        tag: `help-${sessionId}`,
      });
      notification.addEventListener('click', () => {
        window.focus();
        document.querySelector(`.queue-item[data-session-id="${CSS.escape(sessionId)}"] button`)?.focus();
      });
    } catch {
      /* some browsers allow notifications only from a service worker */
    }
  }

  // ---------- live events ----------

  function helpStateOf(id) {
    const known = state.rows.get(id) || state.queue.get(id);
    return known ? known.help_state : undefined;
  }

  function onNotification(frame) {
    const metadata = frame.metadata || {};
    const event = metadata.event;
    const id = frame.session_id;
    if (!event) return;
    state.events += 1;
    switch (event) {
      case 'help_requested': {
        const known = state.rows.get(id) || state.queue.get(id);
        // Asked while an admin is in the conversation: being helped already (the server says so too).
        const helpState = known && known.assisting_admin_name ? 'assisted' : 'open';
        const isNew = !(known && known.help_state === helpState);
        const base = known || {
          session_id: id,
          id,
          user_id: metadata.user_id || '',
          name: metadata.session_name || '',
          is_active: true,
          last_activity: new Date().toISOString(),
        };
        state.queue.set(id, { ...base, help_requested: true, help_state: helpState, is_active: true });
        patch(id, { help_requested: true, help_state: helpState });
        const tr = ui.rows.querySelector(`tr[data-session-id="${CSS.escape(id)}"]`);
        if (tr) flashRow(tr, id);
        else state.flash.add(id);
        if (helpState === 'open') alertHelp(metadata, id);
        if (isNew && !(known && known.help_requested)) bumpMetric('help_requested_count', 1);
        reload.queue(true);
        break;
      }
      // Only a waiting request moves on with a takeover: one nobody asked for has no help state.
      case 'takeover_started':
        patch(id, {
          ...(helpStateOf(id) === 'open' ? { help_state: 'assisted' } : {}),
          assisting_admin_name: metadata.admin_name || 'an admin',
          admin_assisted: true,
        });
        break;
      case 'takeover_ended':
        patch(id, {
          ...(helpStateOf(id) === 'assisted' ? { help_state: 'resolved' } : {}),
          assisting_admin_name: '',
          admin_assisted: true,
        });
        break;
      case 'help_resolved':
        patch(id, { help_state: 'resolved' });
        break;
      case 'session_started':
        bumpMetric('active_sessions', 1);
        bumpMetric('total_sessions', 1);
        reload.list(true);
        break;
      case 'session_ended':
        bumpMetric('active_sessions', -1);
        patch(id, { is_active: false, assisting_admin_name: '' });
        break;
      default:
        return; // operational alerts (LLM failing, database) are not about one session
    }
    reload.metrics(true);
  }

  function setLive(stateName, label) {
    ui.conn.dataset.state = stateName;
    ui.connLabel.textContent = label;
  }

  function connectLive() {
    if (state.fatal) return;
    const socket = new WebSocket(`${C.wsBase}?${new URLSearchParams({ token: state.token })}`);
    state.socket = socket;
    setLive('connecting', 'Live updates: connecting…');
    socket.addEventListener('open', () => {
      state.backoffMs = 1000;
      if (!state.fatal) setLive('connected', 'Live');
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
      if (state.fatal) return;
      if (event.code === 4001 || event.code === 4003) {
        setLive('offline', 'Live updates off');
        return;
      }
      const delay = state.backoffMs;
      state.backoffMs = Math.min(state.backoffMs * 2, 30000);
      setLive('reconnecting', 'Live updates: reconnecting…');
      setTimeout(connectLive, delay);
      // Events may have been missed while the socket was down.
      reload.list(true);
      reload.queue(true);
    });
  }

  /** Signed out or not an admin: say so, stop live updates and every control. */
  function fatal(text) {
    state.fatal = true;
    setStatus(text, true);
    setLive('offline', 'Live updates off');
    clearInterval(state.periodic);
    if (state.socket) {
      const socket = state.socket;
      state.socket = null;
      socket.close();
    }
    for (const control of document.querySelectorAll(
      '.admin-controls button:not(.theme-toggle), .admin-controls input, .admin-controls select, #filters input, #filters select, .pager button',
    ))
      control.disabled = true;
    ui.queueEmpty.textContent = '';
    ui.cards.replaceChildren();
  }

  function schedulePeriodic() {
    clearInterval(state.periodic);
    if (ui.auto.checked) state.periodic = setInterval(() => refreshAll(), PACE.periodicMs);
  }

  function wire() {
    const reloadList = () => {
      state.offset = 0;
      reload.list(false);
    };
    // Typing and the selects together: one read of the list per burst of changes.
    const filtersChanged = perBurst(reloadList, PACE.filterQuietMs, false);
    ui.filters.addEventListener('change', (event) => {
      if (event.target !== ui.user) filtersChanged();
    });
    ui.filters.addEventListener('submit', (event) => {
      event.preventDefault();
      filtersChanged.now();
    });
    ui.user.addEventListener('input', filtersChanged);
    ui.prev.addEventListener('click', () => {
      state.offset = Math.max(0, state.offset - Number(ui.limit.value));
      reload.list(false);
    });
    ui.next.addEventListener('click', () => {
      state.offset += Number(ui.limit.value);
      reload.list(false);
    });
    ui.drillBack.addEventListener('click', () => {
      state.drillUser = null;
      ui.drill.hidden = true;
      reloadList();
    });
    ui.range.addEventListener(
      'change',
      perBurst(
        () => {
          reload.metrics(false);
          reload.chart(false);
        },
        PACE.filterQuietMs,
        false,
      ),
    );
    ui.refresh.addEventListener('click', perBurst(refreshAll, PACE.refreshQuietMs, true));
    ui.auto.addEventListener('change', schedulePeriodic);
    ui.alerts.addEventListener('click', () => void toggleAlerts());
    ui.sound.checked = stored(SOUND_KEY) === 'on';
    ui.sound.addEventListener('change', () => {
      store(SOUND_KEY, ui.sound.checked ? 'on' : 'off');
      if (ui.sound.checked) chime();
    });
    labelAlerts();
  }

  async function main() {
    state.token = await C.resolveToken();
    const problem = state.token ? C.tokenProblem(state.token) : 'missing';
    if (problem) return fatal(C.TOKEN_TEXT[problem]);
    if (!C.isAdminToken(state.token)) return fatal('This page needs an admin account.');
    state.me = C.claimsOf(state.token);
    wire();
    refreshAll();
    schedulePeriodic();
    connectLive();
  }

  void main();
})();
