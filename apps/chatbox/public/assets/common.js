/* Shared helpers for the chatbox web client: URL parameters, token, REST, Markdown, formatting. */
(function () {
  'use strict';

  const params = new URLSearchParams(window.location.search);
  const PAGE_NAMES = ['chat', 'sessions-page', 'admin-page'];

  /** `{prefix}`: the `prefix` parameter, else derived from the page's own path. */
  function detectPrefix() {
    const given = params.get('prefix');
    if (given) return given.startsWith('/') ? given.replace(/\/+$/, '') : `/${given.replace(/\/+$/, '')}`;
    const parts = window.location.pathname.replace(/\/+$/, '').split('/');
    if (PAGE_NAMES.includes(parts[parts.length - 1])) parts.pop();
    return parts.join('/');
  }

  /**
   * `api` (host:port of the API) is used only when it is this page's own host or one of the API
   * origins the server lists (WEB_CLIENT_API_ORIGINS): the token is sent there. Otherwise it is
   * ignored and the page says so.
   */
  function allowedApiHost(requested) {
    if (!requested) return { host: '', refused: '' };
    const meta = document.querySelector('meta[name="chatbox-api-origins"]');
    const allowed = ((meta && meta.getAttribute('content')) || '').split(/\s+/).filter(Boolean);
    let origin = '';
    try {
      origin = new URL(`${window.location.protocol}//${requested}`).origin;
    } catch {
      origin = '';
    }
    if (origin && (origin === window.location.origin || allowed.includes(origin)))
      return { host: requested, refused: '' };
    return { host: '', refused: requested };
  }

  function showApiNotice(refused) {
    const notice = document.createElement('div');
    notice.className = 'readonly-note api-notice';
    notice.setAttribute('role', 'alert');
    notice.textContent = `Ignored api=${refused}: not an allowed API server; using this site instead.`;
    document.body.prepend(notice);
  }

  const prefix = detectPrefix();
  const apiChoice = allowedApiHost(params.get('api'));
  const apiHost = apiChoice.host;
  if (apiChoice.refused) {
    if (document.body) showApiNotice(apiChoice.refused);
    else document.addEventListener('DOMContentLoaded', () => showApiNotice(apiChoice.refused));
  }
  const httpBase = apiHost
    ? `${window.location.protocol}//${apiHost}${prefix}`
    : `${window.location.origin}${prefix}`;
  const wsBase = `${window.location.protocol === 'https:' ? 'wss:' : 'ws:'}//${apiHost || window.location.host}${prefix}/ws`;

  /** Removes parameters (the token) from the address bar without reloading. */
  function dropParams(names) {
    const url = new URL(window.location.href);
    let changed = false;
    for (const name of names) {
      if (url.searchParams.has(name)) {
        url.searchParams.delete(name);
        changed = true;
      }
    }
    if (changed) window.history.replaceState(null, '', url.pathname + url.search + url.hash);
  }

  function setParam(name, value) {
    const url = new URL(window.location.href);
    if (value === undefined || value === null || value === '') url.searchParams.delete(name);
    else url.searchParams.set(name, value);
    window.history.replaceState(null, '', url.pathname + url.search + url.hash);
  }

  /** The origin of an http(s) address, else ''. */
  function httpOrigin(address) {
    try {
      const url = new URL(address);
      return url.protocol === 'https:' || url.protocol === 'http:' ? url.origin : '';
    } catch {
      return '';
    }
  }

  /**
   * The origin of the page framing this one (the widget's host page; the CSP frame-ancestors limits
   * framing to ALLOWED_ORIGINS): `request_token` and `chatbox_close` are posted there, and a token is
   * accepted only from the parent window at that origin. The browser's own word first
   * (`location.ancestorOrigins`: Chromium, Safari); Firefox has none, so then the `host` parameter
   * the widget adds to the iframe's address (it survives navigation inside the frame), then the
   * origin of `document.referrer` (the page that loaded the frame, for iframes made by hand), else
   * this page's own origin. A wrong guess costs nothing: postMessage delivers only to the origin it
   * names, and nothing but the parent at that origin is believed.
   */
  function parentOrigin() {
    const ancestors = window.location.ancestorOrigins;
    if (ancestors && ancestors.length > 0) return ancestors[0];
    return httpOrigin(params.get('host') || '') || httpOrigin(document.referrer) || window.location.origin;
  }

  function askParentForToken(timeoutMs) {
    return new Promise((resolve) => {
      if (window.parent === window) return resolve(null);
      const origin = parentOrigin();
      const timer = setTimeout(() => {
        window.removeEventListener('message', onMessage);
        resolve(null);
      }, timeoutMs);
      function onMessage(event) {
        if (event.source !== window.parent || event.origin !== origin) return;
        const data = event.data;
        if (!data || data.type !== 'token' || typeof data.token !== 'string' || !data.token) return;
        clearTimeout(timer);
        window.removeEventListener('message', onMessage);
        resolve(data.token);
      }
      window.addEventListener('message', onMessage);
      window.parent.postMessage({ type: 'request_token' }, origin);
    });
  }

  /** Token from the URL (then kept in sessionStorage and removed from the address bar), storage, or parent. */
  async function resolveToken() {
    const fromUrl = params.get('token');
    if (fromUrl) {
      try {
        window.sessionStorage.setItem('jwt_token', fromUrl);
      } catch {
        /* storage may be disabled; the token still works for this page */
      }
      dropParams(['token']);
      return fromUrl;
    }
    let stored = null;
    try {
      stored = window.sessionStorage.getItem('jwt_token');
    } catch {
      stored = null;
    }
    if (stored) return stored;
    const fromParent = await askParentForToken(3000);
    if (fromParent) {
      try {
        window.sessionStorage.setItem('jwt_token', fromParent);
      } catch {
        /* ignore */
      }
    }
    return fromParent;
  }

  /** Claims of a JWT, read without verification (display only: the server decides). */
  function claimsOf(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const json = decodeURIComponent(
        atob(part)
          .split('')
          .map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
          .join(''),
      );
      return JSON.parse(json);
    } catch {
      return {};
    }
  }

  function isAdminToken(token) {
    const roles = claimsOf(token).roles;
    return Array.isArray(roles) && (roles.includes('admin') || roles.includes('chat_admin'));
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.message || body.error)) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  /** JSON REST call under the prefix. Resolves `{data, headers, status}`; rejects with ApiError. */
  async function api(path, { token, method = 'GET', body } = {}) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(`${httpBase}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit',
      });
    } catch {
      throw new ApiError(0, { message: 'The server cannot be reached' });
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = { message: text };
      }
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return { data, headers: response.headers, status: response.status };
  }

  /** URL of another view, keeping `prefix` and `api` (never the token). */
  function pageUrl(page, extra = {}) {
    const base = page === 'sessions' ? `${prefix}/` : `${prefix}/${page}`;
    const query = new URLSearchParams();
    if (params.get('prefix')) query.set('prefix', params.get('prefix'));
    if (apiHost) query.set('api', apiHost);
    // Inside the widget's frame, the next page is still embedded and still knows its host page.
    for (const key of ['embed', 'host']) if (params.get(key)) query.set(key, params.get(key));
    for (const [key, value] of Object.entries(extra)) {
      if (value !== undefined && value !== null && value !== '') query.set(key, String(value));
    }
    const search = query.toString();
    return search ? `${base}?${search}` : base;
  }

  const MARKDOWN_OPTIONS = { gfm: true, breaks: true, async: false };
  let purifierReady = false;

  function preparePurifier() {
    if (purifierReady || !window.DOMPurify) return;
    purifierReady = true;
    window.DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node.tagName === 'A' && node.getAttribute('href')) {
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noopener noreferrer nofollow');
      }
    });
  }

  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&#39;');
  }

  /** Markdown → sanitised HTML. Without the vendored libraries: escaped plain text. */
  function renderMarkdown(text) {
    if (window.marked && window.DOMPurify) {
      preparePurifier();
      const html = window.marked.parse(String(text || ''), MARKDOWN_OPTIONS);
      return window.DOMPurify.sanitize(html, {
        USE_PROFILES: { html: true },
        FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe'],
        FORBID_ATTR: ['style'],
      });
    }
    return escapeHtml(text || '').replace(/\n/g, '<br>');
  }

  function relativeTime(value) {
    const time = new Date(value).getTime();
    if (!Number.isFinite(time)) return '';
    const seconds = Math.round((Date.now() - time) / 1000);
    if (seconds < 45) return 'just now';
    const units = [
      ['year', 365 * 24 * 3600],
      ['month', 30 * 24 * 3600],
      ['week', 7 * 24 * 3600],
      ['day', 24 * 3600],
      ['hour', 3600],
      ['minute', 60],
    ];
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size) {
        const count = Math.round(seconds / size);
        return `${count} ${unit}${count === 1 ? '' : 's'} ago`;
      }
    }
    return 'just now';
  }

  function formatTime(value) {
    const date = new Date(value);
    if (!Number.isFinite(date.getTime())) return '';
    return date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
  }

  function formatDuration(seconds) {
    const total = Math.max(0, Math.round(Number(seconds) || 0));
    if (total < 60) return `${total}s`;
    if (total < 3600) return `${Math.floor(total / 60)}m ${total % 60}s`;
    return `${Math.floor(total / 3600)}h ${Math.floor((total % 3600) / 60)}m`;
  }

  /** Small DOM builder: el('div', {class: 'x', text: 'y'}, child, ...). */
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = value;
      else if (key === 'class') node.className = value;
      else if (key.startsWith('on') && typeof value === 'function')
        node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  window.Chatbox = {
    params,
    prefix,
    apiHost,
    httpBase,
    wsBase,
    resolveToken,
    askParentForToken,
    parentOrigin,
    claimsOf,
    isAdminToken,
    api,
    ApiError,
    pageUrl,
    setParam,
    dropParams,
    renderMarkdown,
    escapeHtml,
    relativeTime,
    formatTime,
    formatDuration,
    el,
  };
})();
