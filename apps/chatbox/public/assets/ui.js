/* Shared interface pieces of the web client: theme toggle, code blocks, token checks, icons. */
(function () {
  'use strict';
  const C = window.Chatbox;
  const THEME_KEY = 'chatbox_theme';
  const SVG_NS = 'http://www.w3.org/2000/svg';

  /** Small stroke icons (24×24 viewBox), drawn with paths so no inline style is needed. */
  const ICON_PATHS = {
    menu: ['M4 6h16M4 12h16M4 18h16'],
    close: ['M6 6l12 12M18 6L6 18'],
    plus: ['M12 5v14M5 12h14'],
    pencil: ['M4 20h4L19 9l-4-4L4 16z', 'M13.5 6.5l4 4'],
    trash: ['M4 7h16', 'M9 7V4h6v3', 'M6 7l1 13h10l1-13'],
    copy: ['M9 9h10v11H9z', 'M5 15V4h10'],
    check: ['M5 12.5l4.5 4.5L19 7.5'],
    refresh: ['M20 11a8 8 0 1 0-2.3 5.7', 'M20 4v7h-7'],
    sun: [
      'M12 16a4 4 0 1 0 0-8 4 4 0 0 0 0 8z',
      'M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4',
    ],
    moon: ['M20 14.5A8 8 0 0 1 9.5 4 8 8 0 1 0 20 14.5z'],
    down: ['M12 5v14M6 13l6 6 6-6'],
    chat: ['M4 5h16v11H9l-5 4z'],
    user: ['M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M4 21a8 8 0 0 1 16 0'],
    spark: ['M12 3l2 5.5L19.5 10 14 12l-2 6-2-6-5.5-2L10 8.5z'],
    support: ['M4 14v-2a8 8 0 0 1 16 0v2', 'M4 14h3v5H4zM17 14h3v5h-3z'],
    bell: ['M6 16V11a6 6 0 0 1 12 0v5l2 2H4z', 'M10 20a2 2 0 0 0 4 0'],
    sound: ['M4 9h4l5-4v14l-5-4H4z', 'M16 9a4 4 0 0 1 0 6'],
    panel: ['M4 4h16v16H4z', 'M15 4v16'],
    reply: ['M10 8L5 12l5 4', 'M5 12h9a5 5 0 0 1 5 5v1'],
    history: ['M12 7v5l3 2', 'M3 12a9 9 0 1 0 3-6.7', 'M3 4v4h4'],
    share: ['M12 4v11', 'M7.5 8.5L12 4l4.5 4.5', 'M5 13v6h14v-6'],
  };

  function icon(name, size = 20) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', String(size));
    svg.setAttribute('height', String(size));
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    svg.setAttribute('class', 'icon');
    for (const d of ICON_PATHS[name] || []) {
      const path = document.createElementNS(SVG_NS, 'path');
      path.setAttribute('d', d);
      svg.append(path);
    }
    return svg;
  }

  /** Replaces `<span data-icon="name">` placeholders in the static pages with their SVG. */
  function drawIcons(root = document) {
    for (const slot of root.querySelectorAll('[data-icon]')) {
      slot.replaceWith(icon(slot.dataset.icon, Number(slot.dataset.size) || 20));
    }
  }

  // ---------- theme ----------

  function systemTheme() {
    return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  }

  function currentTheme() {
    return document.documentElement.dataset.theme || systemTheme();
  }

  function labelThemeButtons() {
    const dark = currentTheme() === 'dark';
    for (const button of document.querySelectorAll('.theme-toggle')) {
      button.setAttribute('aria-pressed', String(dark));
      button.setAttribute('aria-label', dark ? 'Use the light theme' : 'Use the dark theme');
      button.title = dark ? 'Light theme' : 'Dark theme';
      button.replaceChildren(icon(dark ? 'sun' : 'moon'));
    }
  }

  /** Flips between light and dark; the choice is kept (until then the system preference applies). */
  function toggleTheme() {
    const next = currentTheme() === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    try {
      window.localStorage.setItem(THEME_KEY, next);
    } catch {
      /* not kept: still applied to this page */
    }
    themeChanged();
  }

  /**
   * Framed (the widget), the host page is told the theme in use, so the widget's panel around the
   * frame follows the toggle too (the host page cannot read this page's choice).
   */
  function announceTheme() {
    if (window.parent === window) return;
    window.parent.postMessage({ type: 'chatbox_theme', theme: currentTheme() }, C.parentOrigin());
  }

  function themeChanged() {
    labelThemeButtons();
    announceTheme();
  }

  function wireTheme() {
    for (const button of document.querySelectorAll('.theme-toggle'))
      button.addEventListener('click', toggleTheme);
    themeChanged();
    if (window.matchMedia)
      window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', themeChanged);
  }

  // ---------- code blocks ----------

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      const area = C.el('textarea', { class: 'visually-hidden', 'aria-hidden': 'true' });
      area.value = text;
      document.body.append(area);
      area.select();
      const ok = Boolean(document.execCommand && document.execCommand('copy'));
      area.remove();
      return ok;
    }
  }

  /** A button that copies `text()` and says so for a moment. */
  function copyButton(text, label = 'Copy') {
    const button = C.el('button', { type: 'button', class: 'copy-btn', 'aria-label': label, title: label });
    const idle = () => button.replaceChildren(icon('copy', 16), C.el('span', { text: 'Copy' }));
    idle();
    button.addEventListener('click', async () => {
      const ok = await copyText(text());
      button.replaceChildren(
        icon(ok ? 'check' : 'copy', 16),
        C.el('span', { text: ok ? 'Copied' : 'Copy failed' }),
      );
      button.classList.toggle('copied', ok);
      setTimeout(() => {
        idle();
        button.classList.remove('copied');
      }, 1600);
    });
    return button;
  }

  const LANGUAGE_NAMES = {
    js: 'JavaScript',
    javascript: 'JavaScript',
    ts: 'TypeScript',
    typescript: 'TypeScript',
    py: 'Python',
    python: 'Python',
    sh: 'Shell',
    bash: 'Bash',
    shell: 'Shell',
    json: 'JSON',
    html: 'HTML',
    xml: 'XML',
    css: 'CSS',
    sql: 'SQL',
    go: 'Go',
    java: 'Java',
    c: 'C',
    cpp: 'C++',
    csharp: 'C#',
    cs: 'C#',
    rust: 'Rust',
    rb: 'Ruby',
    ruby: 'Ruby',
    php: 'PHP',
    yaml: 'YAML',
    yml: 'YAML',
    md: 'Markdown',
    markdown: 'Markdown',
    kotlin: 'Kotlin',
    swift: 'Swift',
    diff: 'Diff',
    plaintext: 'Text',
    text: 'Text',
  };

  function languageOf(code) {
    const match = /(?:^|\s)language-([\w+#-]+)/.exec(code.className);
    return match ? match[1].toLowerCase() : '';
  }

  /**
   * Wraps each `<pre><code>` of rendered Markdown in a block with a language label and a copy
   * button, and colours it with highlight.js (served from node_modules like marked and DOMPurify).
   * Safe to run again on the same container.
   */
  function enhanceCode(container) {
    for (const pre of container.querySelectorAll('pre')) {
      if (pre.parentElement && pre.parentElement.classList.contains('code-block')) continue;
      const code = pre.querySelector('code');
      if (!code) continue;
      const language = languageOf(code);
      if (window.hljs) {
        try {
          if (language && window.hljs.getLanguage(language)) window.hljs.highlightElement(code);
          else if (!language) {
            const result = window.hljs.highlightAuto(code.textContent || '');
            if (result.relevance >= 5) {
              code.innerHTML = result.value;
              code.classList.add('hljs');
            }
          }
        } catch {
          /* unhighlighted code is still readable */
        }
      }
      const label = language ? LANGUAGE_NAMES[language] || language : 'Code';
      const block = C.el(
        'div',
        { class: 'code-block' },
        C.el(
          'div',
          { class: 'code-head' },
          C.el('span', { class: 'code-lang', text: label }),
          copyButton(() => code.textContent || '', `Copy ${label} code`),
        ),
      );
      pre.replaceWith(block);
      block.append(pre);
    }
  }

  /** Markdown → sanitised HTML in `target`, with enhanced code blocks. */
  function renderMarkdownInto(target, text) {
    target.innerHTML = C.renderMarkdown(text);
    enhanceCode(target);
  }

  // ---------- token checks ----------

  /**
   * What is wrong with a token before the server is asked: `malformed` (not a JWT with a user id)
   * or `expired` (its `exp` has passed); null when it looks usable. The server still decides.
   */
  function tokenProblem(token) {
    if (typeof token !== 'string' || !/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)) return 'malformed';
    const claims = C.claimsOf(token);
    if (!claims || typeof claims.user_id !== 'string' || claims.user_id === '') return 'malformed';
    if (typeof claims.exp === 'number' && claims.exp * 1000 <= Date.now()) return 'expired';
    return null;
  }

  const TOKEN_TEXT = {
    missing: 'Sign-in required: open this page with the link you were given.',
    malformed: 'This sign-in link is not valid. Ask for a new link.',
    expired: 'Your sign-in has expired. Reopen the link you were given.',
    rejected: 'This sign-in link is not accepted by the server. Ask for a new link.',
  };

  /** Why the server refused a token (401 body), in the words of TOKEN_TEXT. */
  function refusal(error) {
    const message = (error && error.body && error.body.message) || '';
    return /expired/i.test(message) ? 'expired' : 'rejected';
  }

  Object.assign(C, {
    icon,
    drawIcons,
    toggleTheme,
    currentTheme,
    enhanceCode,
    renderMarkdownInto,
    copyText,
    copyButton,
    tokenProblem,
    tokenRefusal: refusal,
    TOKEN_TEXT,
  });

  drawIcons();
  wireTheme();
})();
