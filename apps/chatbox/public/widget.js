/*
 * Chatbox widget: one script tag on any page adds a chat bubble that opens the chat in an iframe.
 *
 *   <script src="https://chat.example.com/chatbox/widget.js"
 *           data-token-endpoint="/api/chat-token" data-title="Chat with us" defer></script>
 *
 * The chat page asks its parent for a token (`{type:"request_token"}`); this script answers with
 * `{type:"token", token}` from `window.ChatboxWidget.getToken()` when the page defines it, else from
 * `data-token-endpoint` (fetched with the page's cookies; JSON `{token}` or plain text). With neither,
 * the host page answers the request itself. The site must be listed in the service's
 * ALLOWED_ORIGINS (the chat page's CSP `frame-ancestors`). The iframe's address carries `host`
 * (this page's origin), where the chat sends its messages when the browser does not tell a frame
 * its ancestors (Firefox). The chat also says which theme it shows (`chatbox_theme`), and the
 * panel follows. Styles are set through the CSSOM, so the host page's CSP needs no `unsafe-inline`.
 */
(function () {
  'use strict';
  const script = document.currentScript;
  if (!script || window.__chatboxWidgetLoaded) return;
  window.__chatboxWidgetLoaded = true;

  const source = new URL(script.src, window.location.href);
  const chatOrigin = source.origin;
  const base = source.href.replace(/\/widget\.js(?:[?#].*)?$/, '');
  const options = script.dataset;
  const title = options.title || 'Chat with us';
  const side = options.position === 'left' ? 'left' : 'right';
  const color = /^#[0-9a-f]{3,8}$/i.test(options.color || '') ? options.color : '#2458d3';
  const SVG = 'http://www.w3.org/2000/svg';
  const SMALL = window.matchMedia('(max-width: 480px)');
  const DARK = window.matchMedia('(prefers-color-scheme: dark)');
  /** The chat page's own background (its `--bg`) in each theme: what shows while the frame loads. */
  const BACKGROUND = { light: '#f6f7f9', dark: '#0f1217' };

  let panel = null;
  let frame = null;
  let open = false;
  /** The theme the chat says it shows (its toggle wins over the system); until it speaks, the system's. */
  let chatTheme = null;

  function css(node, rules) {
    for (const [name, value] of Object.entries(rules)) node.style.setProperty(name, value);
    return node;
  }

  function icon(paths) {
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', '26');
    svg.setAttribute('height', '26');
    svg.setAttribute('aria-hidden', 'true');
    css(svg, {
      fill: 'none',
      stroke: '#fff',
      'stroke-width': '2',
      'stroke-linecap': 'round',
      'stroke-linejoin': 'round',
    });
    for (const d of paths) {
      const path = document.createElementNS(SVG, 'path');
      path.setAttribute('d', d);
      svg.append(path);
    }
    return svg;
  }

  const CHAT_ICON = ['M4 5h16v11H9l-5 4z'];
  const CLOSE_ICON = ['M6 6l12 12M18 6L6 18'];

  const bubble = document.createElement('button');
  bubble.type = 'button';
  bubble.className = 'chatbox-widget-bubble';
  bubble.setAttribute('aria-label', `Open chat: ${title}`);
  bubble.setAttribute('aria-expanded', 'false');
  bubble.title = title;
  css(bubble, {
    position: 'fixed',
    bottom: '20px',
    [side]: '20px',
    width: '58px',
    height: '58px',
    padding: '0',
    display: 'inline-flex',
    'align-items': 'center',
    'justify-content': 'center',
    border: 'none',
    'border-radius': '50%',
    background: color,
    cursor: 'pointer',
    'box-shadow': '0 8px 24px rgba(16, 24, 40, 0.28)',
    'z-index': '2147483646',
    transition: 'transform 0.15s ease',
  });
  bubble.append(icon(CHAT_ICON));
  bubble.addEventListener('mouseenter', () => css(bubble, { transform: 'scale(1.06)' }));
  bubble.addEventListener('mouseleave', () => css(bubble, { transform: 'none' }));
  bubble.addEventListener('click', () => (open ? close() : show()));

  function layout() {
    if (!panel) return;
    const small = SMALL.matches;
    css(
      panel,
      small
        ? { inset: '0', width: '100%', height: '100%', 'border-radius': '0', bottom: '0', [side]: '0' }
        : {
            inset: 'auto',
            bottom: '92px',
            [side]: '20px',
            width: '390px',
            height: 'min(660px, calc(100vh - 120px))',
            'border-radius': '16px',
          },
    );
    // Full screen on a phone: the chat's own close button closes it, the bubble would cover it.
    css(bubble, { display: open && small ? 'none' : 'inline-flex' });
  }

  function paint() {
    if (!panel) return;
    const theme = chatTheme || (DARK.matches ? 'dark' : 'light');
    css(panel, { background: BACKGROUND[theme], 'color-scheme': theme });
  }

  function build() {
    panel = document.createElement('div');
    panel.className = 'chatbox-widget-panel';
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-label', title);
    css(panel, {
      position: 'fixed',
      overflow: 'hidden',
      'box-shadow': '0 16px 48px rgba(16, 24, 40, 0.3)',
      'z-index': '2147483647',
      display: 'none',
    });
    frame = document.createElement('iframe');
    frame.title = title;
    // `host` names this page's origin for the chat's replies: Firefox tells a frame nothing of its
    // ancestors (no location.ancestorOrigins), and the frame's referrer is gone after it navigates.
    frame.src = `${base}/chat?${new URLSearchParams({ embed: '1', host: window.location.origin })}`;
    frame.setAttribute('allow', 'microphone; clipboard-write');
    css(frame, { width: '100%', height: '100%', border: '0', display: 'block' });
    panel.append(frame);
    document.body.append(panel);
    paint();
    SMALL.addEventListener('change', layout);
    DARK.addEventListener('change', paint);
  }

  function show() {
    if (!panel) build();
    open = true;
    css(panel, { display: 'block' });
    bubble.setAttribute('aria-expanded', 'true');
    bubble.setAttribute('aria-label', `Close chat: ${title}`);
    bubble.replaceChildren(icon(CLOSE_ICON));
    layout();
    frame.focus();
  }

  function close() {
    if (!panel) return;
    open = false;
    css(panel, { display: 'none' });
    bubble.setAttribute('aria-expanded', 'false');
    bubble.setAttribute('aria-label', `Open chat: ${title}`);
    bubble.replaceChildren(icon(CHAT_ICON));
    layout();
    bubble.focus();
  }

  function hook() {
    const api = window.ChatboxWidget;
    return api && typeof api.getToken === 'function' ? api.getToken : null;
  }

  async function fetchToken() {
    const fromPage = hook();
    if (fromPage) return fromPage();
    const response = await fetch(options.tokenEndpoint, {
      credentials: 'include',
      headers: { Accept: 'application/json, text/plain' },
    });
    if (!response.ok) throw new Error(`token endpoint answered ${response.status}`);
    if ((response.headers.get('content-type') || '').includes('json')) {
      const body = await response.json();
      return body && (body.token || body.access_token);
    }
    return (await response.text()).trim();
  }

  window.addEventListener('message', (event) => {
    if (!frame || event.source !== frame.contentWindow || event.origin !== chatOrigin) return;
    const data = event.data || {};
    if (data.type === 'chatbox_close') return close();
    if (data.type === 'chatbox_theme') {
      if (data.theme === 'light' || data.theme === 'dark') chatTheme = data.theme;
      return paint();
    }
    if (data.type !== 'request_token' || (!hook() && !options.tokenEndpoint)) return;
    Promise.resolve()
      .then(fetchToken)
      .then((token) => {
        if (typeof token === 'string' && token)
          frame.contentWindow.postMessage({ type: 'token', token }, chatOrigin);
      })
      .catch((error) => console.warn('chatbox widget: no token', error));
  });

  window.ChatboxWidget = Object.assign(window.ChatboxWidget || {}, { open: show, close });

  if (document.body) document.body.append(bubble);
  else document.addEventListener('DOMContentLoaded', () => document.body.append(bubble));
})();
