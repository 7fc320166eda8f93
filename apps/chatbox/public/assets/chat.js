/* Chat view: streaming conversation over the WebSocket, history over REST, sidebar, shares, uploads, takeover. */
(function () {
  'use strict';
  const C = window.Chatbox;
  const $ = (id) => document.getElementById(id);

  const ui = {
    sidebar: $('sidebar'),
    sidebarToggle: $('sidebar-toggle'),
    sidebarClose: $('sidebar-close'),
    sidebarBackdrop: $('sidebar-backdrop'),
    newChat: $('new-chat'),
    allChats: $('all-chats'),
    convSearch: $('conv-search'),
    convLimit: $('conv-limit'),
    convList: $('conv-list'),
    convEmpty: $('conv-empty'),
    title: $('chat-title'),
    back: $('back-link'),
    conn: $('conn'),
    connLabel: $('conn-label'),
    modelWrap: $('model-wrap'),
    modelSelect: $('model-select'),
    assistBanner: $('assist-banner'),
    assistName: $('assist-name'),
    help: $('help-btn'),
    share: $('share-btn'),
    panelToggle: $('panel-toggle'),
    resolve: $('resolve-btn'),
    leave: $('leave-btn'),
    embedClose: $('embed-close'),
    readonlyNote: $('readonly-note'),
    messages: $('messages'),
    welcome: $('welcome'),
    welcomeText: $('welcome-text'),
    jump: $('jump-latest'),
    typing: $('typing'),
    typingLabel: $('typing-label'),
    endedBar: $('ended-bar'),
    continueLink: $('continue-link'),
    endedNew: $('ended-new'),
    composer: $('composer'),
    form: $('composer-form'),
    input: $('input'),
    send: $('send-btn'),
    stop: $('stop-btn'),
    fileInput: $('file-input'),
    cameraInput: $('camera-input'),
    fileBtn: $('file-btn'),
    cameraBtn: $('camera-btn'),
    voiceBtn: $('voice-btn'),
    cannedBtn: $('canned-btn'),
    cannedMenu: $('canned-menu'),
    uploadBox: $('upload-progress'),
    uploadBar: $('upload-bar'),
    uploadLabel: $('upload-label'),
    shareDialog: $('share-dialog'),
    shareIntro: $('share-intro'),
    shareLinkBox: $('share-link-box'),
    shareUrl: $('share-url'),
    shareStatus: $('share-status'),
    shareCreate: $('share-create'),
    shareCopy: $('share-copy'),
    shareRevoke: $('share-revoke'),
    shareClose: $('share-close'),
    confirmDialog: $('confirm-dialog'),
    confirmText: $('confirm-text'),
    confirmOk: $('confirm-ok'),
    confirmCancel: $('confirm-cancel'),
    panel: $('admin-panel'),
    panelClose: $('panel-close'),
    panelUser: $('panel-user'),
    panelSessions: $('panel-sessions'),
    transcriptDialog: $('transcript-dialog'),
    transcriptTitle: $('transcript-title'),
    transcript: $('transcript'),
    transcriptClose: $('transcript-close'),
  };

  const NARROW = window.matchMedia('(max-width: 899px)');
  const SIDEBAR_KEY = 'chatbox_sidebar';

  const state = {
    token: null,
    adminMode: C.params.get('admin') === 'true',
    embedded: C.params.get('embed') === '1',
    sessionId: C.params.get('session_id') || null,
    continueFrom: C.params.get('continue_from') || null,
    ended: false,
    named: false,
    readonly: false,
    signedOut: false,
    models: [],
    assistedBy: null,
    helpPending: false,
    socket: null,
    connectedOnce: false,
    backoffMs: 1000,
    reconnectTimer: null,
    closedByUs: false,
    outbox: [],
    /** Bubbles of messages typed while offline: marked pending until the socket takes them. */
    pending: [],
    /** The reply being streamed: {messageId, lastSeq, done, error}. */
    streaming: null,
    /** message id → {el, body, text} for AI bubbles. */
    bubbles: new Map(),
    renderQueued: new Set(),
    renders: 0,
    typingTimer: null,
    typingSent: false,
    recorder: null,
    /** Follow new content at the bottom unless the reader scrolled up. */
    pinned: true,
    /** The last user text, for Regenerate and Retry. */
    lastUserText: '',
    sessions: [],
    shareToken: null,
    focusAfterStream: false,
    sessionUser: null,
  };

  // Test and embedding hook: read-only view of the connection.
  window.__chatbox = {
    get socket() {
      return state.socket;
    },
    get sessionId() {
      return state.sessionId;
    },
    get renders() {
      return state.renders;
    },
  };

  // ---------- scrolling ----------

  function nearBottom() {
    const m = ui.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 48;
  }

  function scrollToBottom(smooth) {
    ui.messages.scrollTo({ top: ui.messages.scrollHeight, behavior: smooth ? 'smooth' : 'auto' });
    state.pinned = true;
    ui.jump.hidden = true;
  }

  /** After content grew: follow it when pinned, else offer the jump button. */
  function contentGrew() {
    if (state.pinned) scrollToBottom();
    else ui.jump.hidden = false;
  }

  function followMedia(node) {
    for (const media of node.querySelectorAll('img'))
      if (!media.complete) media.addEventListener('load', contentGrew, { once: true });
    for (const media of node.querySelectorAll('audio, video'))
      media.addEventListener('loadedmetadata', contentGrew, { once: true });
  }

  function appendNode(node) {
    ui.messages.append(node);
    followMedia(node);
    updateWelcome();
    contentGrew();
  }

  function updateWelcome() {
    const empty = !ui.messages.querySelector('.msg, .system-note');
    ui.welcome.hidden = !empty || state.readonly || state.adminMode;
  }

  // ---------- rendering ----------

  function senderLabel(sender, metadata) {
    if (sender === 'ai') return 'Assistant';
    if (sender === 'admin') return (metadata && metadata.admin_name) || 'Support';
    if (sender === 'system') return 'System';
    return state.adminMode || state.readonly ? 'User' : 'You';
  }

  function isMine(sender) {
    return state.adminMode ? sender === 'admin' : sender === 'user';
  }

  const AVATAR = { ai: 'spark', admin: 'support', user: 'user' };

  function bubble(sender, metadata, timestamp) {
    const body = C.el('div', { class: 'bubble-body' });
    const main = C.el(
      'div',
      { class: 'msg-main' },
      C.el(
        'header',
        { class: 'msg-head' },
        C.el('span', { class: 'msg-sender', text: senderLabel(sender, metadata) }),
        timestamp ? C.el('time', { datetime: timestamp, text: C.formatTime(timestamp) }) : null,
      ),
      body,
    );
    const node = C.el(
      'article',
      { class: `msg msg-${sender}${isMine(sender) ? ' msg-mine' : ''}` },
      C.el('span', { class: 'msg-avatar' }, C.icon(AVATAR[sender] || 'user', 16)),
      main,
    );
    return { node, body, main };
  }

  function addText(sender, content, { metadata, timestamp, markdown } = {}) {
    const { node, body } = bubble(sender, metadata, timestamp);
    if (markdown) {
      body.classList.add('markdown');
      C.renderMarkdownInto(body, content);
    } else {
      body.classList.add('plain');
      body.textContent = content;
    }
    appendNode(node);
    return node;
  }

  function addSystem(text, kind) {
    const node = C.el('div', { class: `system-note${kind ? ` system-${kind}` : ''}`, text });
    if (kind === 'error') node.setAttribute('role', 'alert');
    appendNode(node);
    return node;
  }

  function attachment(frame) {
    const metadata = frame.metadata || {};
    // Stored links are paths ({prefix}/files/…): resolve them against the API, which may be another host.
    const url = frame.file_url
      ? new URL(frame.file_url, C.httpBase).href
      : frame.file_id
        ? `${C.httpBase}/files/${encodeURIComponent(frame.file_id)}`
        : '';
    const mime = metadata.mime_type || metadata.mime || '';
    const name = metadata.filename || metadata.file_name || frame.content || 'file';
    const wrap = C.el('div', { class: 'attachment' });
    if (frame.type === 'voice_message' || mime.startsWith('audio/')) {
      if (url)
        wrap.append(
          C.el('audio', {
            controls: true,
            preload: 'metadata',
            src: url,
            'aria-label': frame.type === 'voice_message' ? 'Voice message' : name,
          }),
        );
      if (frame.content && frame.type === 'voice_message' && frame.content !== name)
        wrap.append(C.el('p', { class: 'transcript', text: frame.content }));
    } else if (mime.startsWith('image/') && url) {
      wrap.append(
        C.el('a', { href: url, target: '_blank', rel: 'noopener' }, C.el('img', { src: url, alt: name })),
      );
    } else if (url) {
      wrap.append(C.el('a', { href: url, target: '_blank', rel: 'noopener', text: `📄 ${name}` }));
    } else {
      wrap.append(C.el('span', { text: `📄 ${name}` }));
    }
    return wrap;
  }

  function addAttachment(frame, sender) {
    const { node, body } = bubble(sender, frame.metadata, frame.timestamp);
    body.append(attachment(frame));
    appendNode(node);
    return node;
  }

  /** The AI bubble for a message id, created on first use. */
  function aiBubble(messageId, timestamp) {
    let entry = state.bubbles.get(messageId);
    if (!entry) {
      const { node, body, main } = bubble('ai', null, timestamp || new Date().toISOString());
      body.classList.add('markdown');
      node.dataset.messageId = messageId;
      entry = { el: node, body, main, text: '' };
      state.bubbles.set(messageId, entry);
      appendNode(node);
    }
    return entry;
  }

  /** Re-renders a bubble from its accumulated text, at most once per frame. */
  function queueRender(messageId) {
    if (state.renderQueued.has(messageId)) return;
    state.renderQueued.add(messageId);
    requestAnimationFrame(() => {
      state.renderQueued.delete(messageId);
      const entry = state.bubbles.get(messageId);
      if (!entry) return;
      C.renderMarkdownInto(entry.body, entry.text);
      state.renders += 1;
      followMedia(entry.body);
      contentGrew();
    });
  }

  /** Copy and (for the newest reply) Regenerate under an AI bubble; Retry when the reply failed. */
  function finishAiBubble(entry, { error, stopped } = {}) {
    entry.el.classList.toggle('msg-stopped', Boolean(stopped));
    entry.el.classList.toggle('msg-error', Boolean(error));
    for (const old of entry.main.querySelectorAll('.msg-actions, .msg-error-note')) old.remove();
    if (error) {
      entry.main.append(
        C.el(
          'div',
          { class: 'msg-error-note', role: 'alert' },
          C.el('span', { text: error }),
          canRegenerate()
            ? C.el(
                'button',
                {
                  type: 'button',
                  class: 'btn btn-small retry-btn',
                  onclick: () => regenerate(entry.el.dataset.messageId),
                },
                C.icon('refresh', 16),
                'Retry',
              )
            : null,
        ),
      );
      return;
    }
    if (state.readonly) return;
    const actions = C.el(
      'div',
      { class: 'msg-actions' },
      C.copyButton(() => entry.text, 'Copy the reply'),
    );
    if (!state.adminMode)
      actions.append(
        C.el(
          'button',
          {
            type: 'button',
            class: 'copy-btn regenerate-btn',
            'aria-label': 'Regenerate the reply',
            title: 'Regenerate',
            onclick: () => regenerate(entry.el.dataset.messageId),
          },
          C.icon('refresh', 16),
          C.el('span', { text: 'Regenerate' }),
        ),
      );
    entry.main.append(actions);
    updateRegenerateButtons();
  }

  /** Only the newest reply can be regenerated, and only while the AI may answer. */
  function updateRegenerateButtons() {
    const replies = [...ui.messages.querySelectorAll('.msg-ai')];
    replies.forEach((node, index) => {
      const isLast = index === replies.length - 1 && !node.nextElementSibling?.classList.contains('msg');
      for (const button of node.querySelectorAll('.regenerate-btn, .retry-btn'))
        button.hidden = !isLast || !canRegenerate();
    });
  }

  function canRegenerate() {
    return (
      !state.readonly &&
      !state.adminMode &&
      !state.ended &&
      !state.assistedBy &&
      !state.signedOut &&
      Boolean(state.lastUserText) &&
      !(state.streaming && !state.streaming.done)
    );
  }

  function renderMessagesInto(messages, { live }) {
    // A regenerated reply replaces the one it names: the old reply and the repeated question are hidden.
    const replaced = new Set(
      (messages || []).map((message) => message.metadata && message.metadata.regenerate_of).filter(Boolean),
    );
    let lastUser = '';
    for (const message of messages || []) {
      const metadata = message.metadata || {};
      if (message.type === 'file_upload' || message.type === 'voice_message') {
        addAttachment(message, message.sender);
        continue;
      }
      if (message.sender === 'user' && !message.type?.startsWith('file')) lastUser = message.content || '';
      if (message.sender === 'user' && metadata.regenerate_of) continue;
      if (message.sender === 'ai') {
        if (replaced.has(message.id)) continue;
        const entry = aiBubble(message.id || `h-${Math.random()}`, message.timestamp);
        entry.text = message.content || '';
        C.renderMarkdownInto(entry.body, entry.text);
        if (live)
          finishAiBubble(entry, {
            stopped: metadata.status === 'stopped' || metadata.status === 'interrupted',
            error: metadata.status === 'error' ? 'The assistant could not answer this time.' : '',
          });
        else if (metadata.status === 'stopped' || metadata.status === 'interrupted')
          entry.el.classList.add('msg-stopped');
        continue;
      }
      if (metadata.continued_from && live) noteContinuedFrom(metadata.continued_from);
      addText(message.sender, message.content || '', {
        metadata,
        timestamp: message.timestamp,
        markdown: message.sender === 'admin',
      });
    }
    return lastUser;
  }

  function renderHistory(messages) {
    for (const node of [...ui.messages.children]) if (node !== ui.welcome) node.remove();
    state.bubbles.clear();
    const lastUser = renderMessagesInto(messages, { live: !state.readonly });
    if (lastUser) state.lastUserText = lastUser;
    updateRegenerateButtons();
    updateWelcome();
    scrollToBottom();
  }

  /** "Continued from …" at the top of a conversation that continues an ended one. */
  function noteContinuedFrom(sessionId) {
    if (ui.messages.querySelector('.continued-note')) return;
    const link = C.el('a', {
      href: C.pageUrl('chat', { session_id: sessionId }),
      'data-session-id': sessionId,
      text: 'an earlier conversation',
    });
    const note = C.el('div', { class: 'system-note continued-note' }, 'Continued from ', link);
    ui.messages.insertBefore(note, ui.welcome.nextSibling);
    nameContinuedFrom();
  }

  /** The earlier conversation's name, once the conversation list is known. */
  function nameContinuedFrom() {
    const link = ui.messages.querySelector('.continued-note a[data-session-id]');
    if (!link) return;
    const known = state.sessions.find((row) => (row.session_id || row.id) === link.dataset.sessionId);
    if (known && known.name) link.textContent = `“${known.name}”`;
  }

  // ---------- connection status ----------

  function setConn(stateName, label) {
    ui.conn.dataset.state = stateName;
    ui.connLabel.textContent = label;
  }

  function setTyping(visible, label) {
    ui.typing.hidden = !visible;
    if (label) ui.typingLabel.textContent = label;
  }

  function setStreaming(active) {
    ui.stop.hidden = !active;
    ui.send.hidden = active;
    if (!active && (state.focusAfterStream || document.activeElement === document.body)) {
      state.focusAfterStream = false;
      if (!ui.input.disabled) ui.input.focus();
    }
    updateRegenerateButtons();
  }

  function updateModelSelector() {
    const show = state.models.length >= 2 && !state.assistedBy && !state.adminMode;
    ui.modelWrap.hidden = !show;
  }

  function updateHelpButton() {
    ui.help.disabled = state.ended || state.signedOut || Boolean(state.assistedBy) || state.helpPending;
    ui.help.title = state.assistedBy ? `${state.assistedBy} is already helping you` : '';
  }

  function setAssisted(name) {
    state.assistedBy = name || null;
    ui.assistBanner.hidden = !name;
    ui.assistName.textContent = name || '';
    updateModelSelector();
    updateHelpButton();
    updateRegenerateButtons();
  }

  function modelName(id) {
    const model = state.models.find((m) => m.id === id);
    return (model && model.name) || id;
  }

  function adoptSession(id) {
    if (!id || id === state.sessionId) return;
    state.sessionId = id;
    C.setParam('session_id', id);
    C.dropParams(['new', 'continue_from']);
    ui.share.disabled = state.adminMode;
    state.shareToken = null;
    void loadSidebar();
  }

  /** Controls that need a valid sign-in and a live conversation. */
  function setComposerEnabled(enabled) {
    for (const control of [ui.input, ui.send, ui.fileBtn, ui.cameraBtn, ui.voiceBtn])
      control.disabled = !enabled;
    if (enabled && (!navigator.mediaDevices || !window.MediaRecorder)) ui.voiceBtn.disabled = true;
    updateHelpButton();
  }

  function signedOut(reason) {
    state.signedOut = true;
    state.closedByUs = true;
    clearTimeout(state.reconnectTimer);
    if (state.socket) state.socket.close();
    setConn('offline', reason === 'expired' ? 'Sign-in expired' : 'Not signed in');
    setComposerEnabled(false);
    ui.share.disabled = true;
    ui.input.placeholder = 'Sign in to chat';
    addSystem(C.TOKEN_TEXT[reason] || C.TOKEN_TEXT.rejected, 'error');
    setTyping(false);
  }

  // ---------- socket ----------

  function send(frame) {
    if (state.sessionId && !frame.session_id) frame.session_id = state.sessionId;
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify(frame));
      return true;
    }
    state.outbox.push(frame);
    return false;
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    const query = new URLSearchParams({ token: state.token });
    const resuming = state.streaming && !state.streaming.done ? state.streaming : null;
    // A resuming socket binds through its stream_resume frame, so it gets exactly what it missed.
    if (state.sessionId && !resuming) query.set('session_id', state.sessionId);
    setConn(
      state.connectedOnce ? 'reconnecting' : 'connecting',
      state.connectedOnce ? 'Reconnecting…' : 'Connecting…',
    );
    const socket = new WebSocket(`${C.wsBase}?${query}`);
    state.socket = socket;
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
      const wasReconnect = state.connectedOnce;
      state.connectedOnce = true;
      state.backoffMs = 1000;
      setConn('connected', 'Connected');
      if (!state.ended) setComposerEnabled(true);
      if (resuming) {
        socket.send(
          JSON.stringify({
            type: 'stream_resume',
            session_id: state.sessionId,
            metadata: { message_id: resuming.messageId, last_seq: String(resuming.lastSeq) },
          }),
        );
      } else if (wasReconnect && state.sessionId && state.pending.length === 0) {
        void refreshHistory();
      }
      const queued = state.outbox.splice(0);
      for (const frame of queued) send(frame);
      for (const node of state.pending.splice(0)) {
        node.classList.remove('msg-pending');
        node.querySelector('.pending-note')?.remove();
      }
    });
    socket.addEventListener('message', (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      handleFrame(frame);
    });
    socket.addEventListener('close', (event) => {
      if (state.socket !== socket) return;
      state.socket = null;
      if (state.closedByUs) return;
      if (event.code === 4001 && state.embedded) return void renewToken();
      if (event.code === 4001 || event.code === 4003) {
        signedOut(event.code === 4001 ? 'expired' : 'rejected');
        return;
      }
      if (!opened && !state.connectedOnce) return void checkRefusedToken();
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    const delay = state.backoffMs;
    state.backoffMs = Math.min(state.backoffMs * 2, 30000);
    setConn('reconnecting', `Reconnecting in ${Math.round(delay / 1000)}s…`);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  /** The first socket never opened: a refused token (401 on the handshake) or a network problem? */
  async function checkRefusedToken() {
    try {
      await C.api('/models', { token: state.token });
    } catch (error) {
      if (error.status === 401) return signedOut(C.tokenRefusal(error));
    }
    scheduleReconnect();
  }

  /** Embedded: an expired token is replaced by a fresh one from the host page, then we reconnect. */
  async function renewToken() {
    try {
      window.sessionStorage.removeItem('jwt_token');
    } catch {
      /* ignore */
    }
    const fresh = await C.askParentForToken(3000);
    if (!fresh || C.tokenProblem(fresh)) return signedOut('expired');
    state.token = fresh;
    try {
      window.sessionStorage.setItem('jwt_token', fresh);
    } catch {
      /* ignore */
    }
    connect();
  }

  async function refreshHistory() {
    if (!state.sessionId) return;
    try {
      const { data } = await C.api(`/sessions/${encodeURIComponent(state.sessionId)}`, {
        token: state.token,
      });
      if (state.streaming && !state.streaming.done) return;
      renderHistory(data.messages);
      applySessionInfo(data);
    } catch {
      /* keep what is on screen */
    }
  }

  async function refreshTitle() {
    if (!state.sessionId || state.adminMode) return;
    try {
      const { data } = await C.api(`/sessions/${encodeURIComponent(state.sessionId)}`, {
        token: state.token,
      });
      if (data.name) applySessionInfo(data);
      void loadSidebar();
    } catch {
      /* the title stays as it is */
    }
  }

  function setTitle(name) {
    ui.title.textContent = name || 'Untitled Chat';
    document.title = `${name || 'Chat'} — Chat`;
  }

  function applySessionInfo(data) {
    if (data.name) state.named = true;
    setTitle(data.name);
    if (data.assisting_admin_name) setAssisted(data.assisting_admin_name);
    if (data.is_active === false) markEnded();
  }

  function markEnded() {
    if (state.ended) return;
    state.ended = true;
    ui.input.disabled = true;
    ui.send.disabled = true;
    for (const button of [ui.fileBtn, ui.cameraBtn, ui.voiceBtn]) button.disabled = true;
    updateHelpButton();
    updateRegenerateButtons();
    ui.input.placeholder = 'This conversation has ended.';
    if (!state.adminMode && !state.readonly && !state.signedOut) {
      ui.composer.hidden = true;
      ui.endedBar.hidden = false;
      ui.continueLink.href = C.pageUrl('chat', { new: 1, continue_from: state.sessionId });
      ui.endedNew.href = C.pageUrl('chat', { new: 1 });
    }
  }

  function handleFrame(frame) {
    const metadata = frame.metadata || {};
    // A greeting's id of a session not created yet is adopted with the first message's frames.
    const announcedOnly = frame.type === 'connection_status' && metadata.new_session === 'true';
    if (frame.session_id && !state.adminMode && !announcedOnly) adoptSession(frame.session_id);
    switch (frame.type) {
      case 'connection_status':
        if (Array.isArray(frame.models)) {
          state.models = frame.models;
          ui.modelSelect.replaceChildren(
            ...frame.models.map((m) => C.el('option', { value: m.id, text: m.name || m.id })),
          );
          updateModelSelector();
        }
        if (frame.model_id) ui.modelSelect.value = frame.model_id;
        // The greeting on connect carries the model list; later ones (model changed, help sent) are news.
        if (frame.content && !Array.isArray(frame.models)) {
          const changed = /^Model changed to /.test(frame.content) && frame.model_id;
          addSystem(changed ? `Model changed to ${modelName(frame.model_id)}` : frame.content);
        }
        return;
      case 'loading':
        state.streaming = { messageId: metadata.message_id, lastSeq: -1, done: false };
        setTyping(true, 'Assistant is typing…');
        setStreaming(true);
        return;
      case 'ai_response':
        return aiResponse(frame, metadata);
      case 'user_message':
        if (frame.sender === 'user' && metadata.regenerate_of) {
          state.bubbles.get(metadata.regenerate_of)?.el.remove();
          return;
        }
        if (frame.sender === 'user') state.lastUserText = frame.content || '';
        addText(frame.sender || 'user', frame.content || '', {
          metadata,
          timestamp: frame.timestamp,
          markdown: frame.sender === 'admin',
        });
        updateRegenerateButtons();
        return;
      case 'file_upload':
      case 'voice_message':
        addAttachment(frame, frame.sender || 'user');
        return;
      case 'typing_indicator': {
        if (state.streaming && !state.streaming.done) return;
        const who =
          frame.sender === 'admin' ? metadata.admin_name || 'Support' : state.adminMode ? 'User' : 'Someone';
        setTyping(metadata.typing === 'true', `${who} is typing…`);
        return;
      }
      case 'admin_join':
        state.helpPending = false;
        setAssisted(metadata.admin_name || 'Support');
        addSystem(frame.content || `${metadata.admin_name} has joined the conversation`);
        return;
      case 'admin_leave':
        setAssisted(null);
        addSystem(frame.content || 'The support agent has left the conversation');
        if (state.adminMode) markEnded();
        return;
      case 'notification':
        if (frame.content) addSystem(frame.content);
        if (metadata.reason === 'session_ended' || metadata.reason === 'ended') markEnded();
        return;
      case 'error':
        return handleError(frame);
      default:
        return;
    }
  }

  function aiResponse(frame, metadata) {
    const messageId = frame.id || metadata.message_id;
    if (!messageId) return;
    const entry = aiBubble(messageId, frame.timestamp);
    const seq = Number(metadata.seq);
    if (!state.streaming || state.streaming.messageId !== messageId)
      state.streaming = { messageId, lastSeq: -1, done: false };
    const stream = state.streaming;
    if (metadata.streaming === 'false') {
      entry.text = frame.content || '';
      stream.done = true;
    } else if (metadata.catch_up === 'true') {
      entry.text = frame.content || '';
      if (Number.isFinite(seq)) stream.lastSeq = seq;
    } else if (metadata.done === 'true') {
      if (frame.content) entry.text += frame.content;
      stream.done = true;
    } else {
      if (Number.isFinite(seq) && seq <= stream.lastSeq) return;
      entry.text += frame.content || '';
      if (Number.isFinite(seq)) stream.lastSeq = seq;
    }
    setTyping(false);
    queueRender(messageId);
    if (stream.done) {
      const failed = metadata.error || metadata.status === 'error';
      setStreaming(false);
      finishAiBubble(entry, {
        stopped: metadata.stopped === 'true' || metadata.status === 'stopped',
        error: failed ? stream.error || 'The assistant could not answer this time.' : '',
      });
      if (!state.named) void refreshTitle();
    }
  }

  function handleError(frame) {
    const error = frame.error || {};
    // A failed reply is shown on its own bubble (with Retry), not as a note above an empty one.
    if (state.streaming && !state.streaming.done && error.code && error.code.startsWith('LLM')) {
      state.streaming.error = error.message || 'The assistant could not answer this time.';
      setTyping(false);
      return;
    }
    let text = error.message || 'Something went wrong';
    if (error.code === 'TOO_MANY_REQUESTS' && error.retry_after)
      text += ` (try again in ${Math.ceil(error.retry_after / 1000)}s)`;
    addSystem(text, 'error');
    if (error.code === 'SESSION_ENDED') markEnded();
  }

  // ---------- composing ----------

  function submitMessage() {
    const content = ui.input.value.trim();
    if (!content || state.ended || state.signedOut) return;
    const node = addText(state.adminMode ? 'admin' : 'user', content, {
      timestamp: new Date().toISOString(),
      markdown: state.adminMode,
    });
    if (!state.adminMode) state.lastUserText = content;
    scrollToBottom();
    const frame = { type: 'user_message', content };
    if (state.continueFrom && !state.sessionId) frame.metadata = { continued_from: state.continueFrom };
    if (!send(frame)) markPending(node);
    ui.input.value = '';
    autoGrow();
    stopTyping();
    updateRegenerateButtons();
  }

  /** A message typed while offline is visibly waiting, not shown as sent. */
  function markPending(node) {
    node.classList.add('msg-pending');
    node
      .querySelector('.msg-main')
      .append(C.el('span', { class: 'pending-note', text: 'Not sent yet — waiting for the connection…' }));
    state.pending.push(node);
  }

  /** Asks again for the reply `messageId` answered: the last question is sent once more. */
  function regenerate(messageId) {
    if (!canRegenerate()) return;
    const frame = { type: 'user_message', content: state.lastUserText };
    if (messageId) frame.metadata = { regenerate_of: messageId };
    const old = messageId ? state.bubbles.get(messageId) : null;
    if (old) {
      old.el.remove();
      state.bubbles.delete(messageId);
    }
    send(frame);
    scrollToBottom();
    updateRegenerateButtons();
  }

  function autoGrow() {
    ui.input.style.height = 'auto';
    ui.input.style.height = `${Math.min(ui.input.scrollHeight, 200)}px`;
  }

  function stopTyping() {
    clearTimeout(state.typingTimer);
    if (state.typingSent && state.sessionId)
      send({ type: 'typing_indicator', metadata: { typing: 'false' } });
    state.typingSent = false;
  }

  function noteTyping() {
    if (!state.sessionId) return;
    if (!state.typingSent) {
      send({ type: 'typing_indicator', metadata: { typing: 'true' } });
      state.typingSent = true;
    }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(stopTyping, 3000);
  }

  // ---------- uploads ----------

  function upload(file, asVoice) {
    if (!file) return;
    const form = new FormData();
    form.append('file', file, file.name || (asVoice ? 'voice.webm' : 'file'));
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${C.httpBase}/upload`);
    xhr.setRequestHeader('Authorization', `Bearer ${state.token}`);
    ui.uploadBox.hidden = false;
    ui.uploadBar.value = 0;
    ui.uploadLabel.textContent = `Uploading ${file.name || 'recording'}…`;
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) ui.uploadBar.value = Math.round((event.loaded / event.total) * 100);
    });
    xhr.addEventListener('load', () => {
      ui.uploadBox.hidden = true;
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 404) return addSystem('File uploads are not available on this server.', 'error');
      if (xhr.status < 200 || xhr.status >= 300 || !body || !body.file_id)
        return addSystem((body && body.message) || `Upload failed (HTTP ${xhr.status})`, 'error');
      const frame = {
        type: asVoice ? 'voice_message' : 'file_upload',
        file_id: body.file_id,
        file_url: body.file_url,
        content: body.filename,
        metadata: {
          filename: body.filename || '',
          mime_type: body.mime_type || '',
          size: String(body.size || ''),
        },
      };
      const node = addAttachment(
        { ...frame, timestamp: new Date().toISOString() },
        state.adminMode ? 'admin' : 'user',
      );
      if (!send(frame)) markPending(node);
    });
    xhr.addEventListener('error', () => {
      ui.uploadBox.hidden = true;
      addSystem('Upload failed: the server cannot be reached.', 'error');
    });
    xhr.send(form);
  }

  async function toggleRecording() {
    if (state.recorder) {
      state.recorder.stop();
      return;
    }
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      addSystem('Voice recording is not supported in this browser.', 'error');
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      addSystem('Microphone access was refused.', 'error');
      return;
    }
    const chunks = [];
    const recorder = new MediaRecorder(stream);
    state.recorder = recorder;
    ui.voiceBtn.setAttribute('aria-pressed', 'true');
    ui.voiceBtn.classList.add('recording');
    recorder.addEventListener('dataavailable', (event) => chunks.push(event.data));
    recorder.addEventListener('stop', () => {
      stream.getTracks().forEach((track) => track.stop());
      state.recorder = null;
      ui.voiceBtn.setAttribute('aria-pressed', 'false');
      ui.voiceBtn.classList.remove('recording');
      const type = recorder.mimeType || 'audio/webm';
      const blob = new Blob(chunks, { type });
      upload(new File([blob], `voice.${type.includes('ogg') ? 'ogg' : 'webm'}`, { type }), true);
    });
    recorder.start();
  }

  // ---------- share ----------

  function shareUrlOf(token) {
    return `${window.location.origin}${C.pageUrl('chat', { share_token: token })}`;
  }

  function showShareLink(url) {
    ui.shareIntro.hidden = true;
    ui.shareLinkBox.hidden = !url;
    ui.shareUrl.value = url || '';
    ui.shareCreate.hidden = Boolean(url);
    ui.shareCopy.hidden = !url;
    ui.shareRevoke.hidden = !url;
    if (url) ui.shareUrl.select();
  }

  /** Opens the dialog; a new public link is made only when the owner confirms with "Create link". */
  function openShare() {
    if (!state.sessionId) return;
    ui.shareStatus.textContent = '';
    ui.shareIntro.hidden = false;
    if (state.shareToken) showShareLink(shareUrlOf(state.shareToken));
    else {
      ui.shareLinkBox.hidden = true;
      ui.shareCreate.hidden = false;
      ui.shareCopy.hidden = true;
      ui.shareRevoke.hidden = true;
    }
    if (typeof ui.shareDialog.showModal === 'function') ui.shareDialog.showModal();
    else ui.shareDialog.setAttribute('open', '');
    (state.shareToken ? ui.shareCopy : ui.shareCreate).focus();
  }

  async function createShare() {
    ui.shareCreate.disabled = true;
    ui.shareStatus.textContent = 'Creating link…';
    try {
      const { data } = await C.api(`/sessions/${encodeURIComponent(state.sessionId)}/share`, {
        token: state.token,
        method: 'POST',
      });
      state.shareToken = data.share_token;
      ui.shareStatus.textContent = '';
      showShareLink(data.share_url);
      ui.shareCopy.focus();
    } catch (error) {
      ui.shareStatus.textContent = error.message;
    } finally {
      ui.shareCreate.disabled = false;
    }
  }

  async function copyShare() {
    const url = ui.shareUrl.value;
    if (!url) return;
    ui.shareStatus.textContent = (await C.copyText(url)) ? 'Link copied.' : 'Select the link and copy it.';
  }

  async function revokeShare() {
    try {
      await C.api(`/sessions/${encodeURIComponent(state.sessionId)}/share`, {
        token: state.token,
        method: 'DELETE',
      });
      state.shareToken = null;
      showShareLink('');
      ui.shareIntro.hidden = false;
      ui.shareStatus.textContent = 'Sharing stopped: the old link no longer works.';
    } catch (error) {
      ui.shareStatus.textContent = error.message;
    }
  }

  // ---------- sidebar ----------

  function isNarrow() {
    return NARROW.matches || state.embedded;
  }

  function setSidebarOpen(open) {
    if (isNarrow()) {
      document.body.classList.toggle('sidebar-open', open);
      ui.sidebarBackdrop.hidden = !open;
      if (open) ui.convSearch.focus();
    } else {
      document.body.classList.toggle('sidebar-collapsed', !open);
      try {
        window.localStorage.setItem(SIDEBAR_KEY, open ? 'open' : 'closed');
      } catch {
        /* not kept */
      }
    }
    ui.sidebarToggle.setAttribute('aria-expanded', String(open));
    ui.sidebarToggle.setAttribute(
      'aria-label',
      open ? 'Hide the conversation list' : 'Show the conversation list',
    );
  }

  function sidebarOpen() {
    return isNarrow()
      ? document.body.classList.contains('sidebar-open')
      : !document.body.classList.contains('sidebar-collapsed');
  }

  function setupSidebar() {
    ui.sidebar.hidden = false;
    ui.sidebarToggle.hidden = false;
    ui.back.hidden = true;
    document.body.classList.add('with-sidebar');
    ui.newChat.href = C.pageUrl('chat', { new: 1 });
    ui.allChats.href = C.pageUrl('sessions');
    let saved = null;
    try {
      saved = window.localStorage.getItem(SIDEBAR_KEY);
    } catch {
      saved = null;
    }
    if (!isNarrow() && saved === 'closed') document.body.classList.add('sidebar-collapsed');
    setSidebarOpen(isNarrow() ? false : saved !== 'closed');
    ui.sidebarToggle.addEventListener('click', () => setSidebarOpen(!sidebarOpen()));
    ui.sidebarClose.addEventListener('click', () => {
      setSidebarOpen(false);
      ui.sidebarToggle.focus();
    });
    ui.sidebarBackdrop.addEventListener('click', () => setSidebarOpen(false));
    ui.sidebar.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && isNarrow()) {
        setSidebarOpen(false);
        ui.sidebarToggle.focus();
      }
    });
    NARROW.addEventListener('change', () => {
      document.body.classList.remove('sidebar-open', 'sidebar-collapsed');
      ui.sidebarBackdrop.hidden = true;
      setSidebarOpen(!isNarrow());
    });
    ui.convSearch.addEventListener('input', renderSidebar);
  }

  async function loadSidebar() {
    if (state.adminMode || state.readonly || !state.token || state.signedOut) return;
    try {
      const { data } = await C.api('/sessions', { token: state.token });
      state.sessions = (data.sessions || []).slice();
      // GET /sessions has no search: the box filters the names of the rows it returned (SPEC: the
      // newest 100). Say so when there are more.
      ui.convLimit.hidden = !data.truncated;
      ui.convLimit.textContent = data.truncated
        ? `Only your ${state.sessions.length} most recent conversations are listed and searched.`
        : '';
      state.sessions.sort(
        (a, b) => new Date(b.last_activity).getTime() - new Date(a.last_activity).getTime(),
      );
      const current = state.sessions.find((row) => (row.session_id || row.id) === state.sessionId);
      if (current && current.share_token) state.shareToken = current.share_token;
      renderSidebar();
      nameContinuedFrom();
    } catch {
      /* the sidebar stays as it was */
    }
  }

  function renderSidebar() {
    const query = ui.convSearch.value.trim().toLowerCase();
    const rows = state.sessions.filter((row) => (row.name || 'Untitled Chat').toLowerCase().includes(query));
    ui.convList.replaceChildren(...rows.map(sidebarItem));
    ui.convEmpty.hidden = rows.length > 0;
    ui.convEmpty.textContent = query ? 'No conversation matches.' : 'No conversations yet.';
  }

  function sidebarItem(row) {
    const id = row.session_id || row.id;
    const name = row.name || 'Untitled Chat';
    const current = id === state.sessionId;
    const link = C.el(
      'a',
      {
        class: 'conv-link',
        href: C.pageUrl('chat', { session_id: id }),
        'aria-current': current ? 'page' : null,
      },
      C.el('span', { class: 'conv-name', text: name }),
      C.el(
        'span',
        { class: 'conv-meta' },
        row.is_active ? C.el('span', { class: 'conv-live', title: 'Active', text: '●' }) : null,
        C.el('time', { datetime: row.last_activity, text: C.relativeTime(row.last_activity) }),
      ),
    );
    const item = C.el(
      'li',
      { class: `conv-item${current ? ' current' : ''}`, 'data-session-id': id },
      link,
      C.el(
        'div',
        { class: 'conv-actions' },
        C.el(
          'button',
          {
            type: 'button',
            class: 'icon-btn conv-rename',
            'aria-label': `Rename “${name}”`,
            title: 'Rename',
            onclick: () => startRename(item, row),
          },
          C.icon('pencil', 16),
        ),
        C.el(
          'button',
          {
            type: 'button',
            class: 'icon-btn conv-delete',
            'aria-label': `Delete “${name}”`,
            title: 'Delete',
            onclick: () => void confirmDelete(row),
          },
          C.icon('trash', 16),
        ),
      ),
    );
    return item;
  }

  function startRename(item, row) {
    const id = row.session_id || row.id;
    const input = C.el('input', {
      class: 'conv-rename-input',
      type: 'text',
      maxlength: '50',
      'aria-label': 'New name',
    });
    input.value = row.name || '';
    item.replaceChildren(input);
    input.focus();
    input.select();
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const name = input.value.trim();
      if (save && name && name !== row.name) {
        try {
          await C.api(`/sessions/${encodeURIComponent(id)}`, {
            token: state.token,
            method: 'PATCH',
            body: { name },
          });
          row.name = name;
          if (id === state.sessionId) setTitle(name);
        } catch (error) {
          addSystem(`Renaming failed: ${error.message}`, 'error');
        }
      }
      renderSidebar();
      ui.convList.querySelector(`[data-session-id="${CSS.escape(id)}"] .conv-rename`)?.focus();
    };
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        void finish(true);
      } else if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        void finish(false);
      }
    });
    input.addEventListener('blur', () => void finish(true));
  }

  function confirm(text) {
    return new Promise((resolve) => {
      ui.confirmText.textContent = text;
      const close = (answer) => {
        ui.confirmOk.removeEventListener('click', yes);
        ui.confirmCancel.removeEventListener('click', no);
        ui.confirmDialog.removeEventListener('cancel', no);
        if (ui.confirmDialog.open) ui.confirmDialog.close();
        resolve(answer);
      };
      const yes = () => close(true);
      const no = () => close(false);
      ui.confirmOk.addEventListener('click', yes);
      ui.confirmCancel.addEventListener('click', no);
      ui.confirmDialog.addEventListener('cancel', no);
      ui.confirmDialog.showModal();
      ui.confirmCancel.focus();
    });
  }

  async function confirmDelete(row) {
    const id = row.session_id || row.id;
    const ok = await confirm(
      `“${row.name || 'Untitled Chat'}” will be removed from your conversations${row.is_active ? ' and ended' : ''}. Its share link stops working.`,
    );
    if (!ok) return;
    try {
      await C.api(`/sessions/${encodeURIComponent(id)}`, { token: state.token, method: 'DELETE' });
    } catch (error) {
      addSystem(`Deleting failed: ${error.message}`, 'error');
      return;
    }
    state.sessions = state.sessions.filter((other) => (other.session_id || other.id) !== id);
    if (id === state.sessionId) {
      window.location.href = C.pageUrl('chat', { new: 1 });
      return;
    }
    renderSidebar();
    ui.convSearch.focus();
  }

  // ---------- modes ----------

  async function sharedView(shareToken) {
    state.readonly = true;
    document.body.classList.add('readonly');
    ui.composer.remove();
    ui.readonlyNote.hidden = false;
    ui.help.hidden = true;
    ui.share.hidden = true;
    ui.conn.hidden = true;
    ui.back.hidden = true;
    ui.welcome.hidden = true;
    try {
      const { data } = await C.api(`/shared/${encodeURIComponent(shareToken)}`);
      ui.title.textContent = data.name || 'Shared conversation';
      document.title = `${data.name || 'Shared conversation'} — Chat`;
      renderHistory(data.messages);
    } catch (error) {
      addSystem(
        error.status === 404 ? 'This link does not exist or is no longer shared.' : error.message,
        'error',
      );
    }
  }

  async function endActiveSessions() {
    try {
      const { data } = await C.api('/sessions', { token: state.token });
      for (const row of (data.sessions || []).filter((r) => r.is_active)) {
        await C.api(`/sessions/${encodeURIComponent(row.session_id || row.id)}/end`, {
          token: state.token,
          method: 'POST',
        }).catch(() => undefined);
      }
    } catch {
      /* a fresh chat still starts; the server ends the previous one on the first message */
    }
    state.sessionId = null;
    C.setParam('session_id', null);
    C.dropParams(['new']);
  }

  async function enterAdminMode() {
    document.body.classList.add('admin-mode');
    ui.leave.hidden = false;
    ui.help.hidden = true;
    ui.share.hidden = true;
    ui.back.href = C.pageUrl('admin-page');
    ui.back.querySelector('.back-text').textContent = 'Dashboard';
    if (!state.sessionId) {
      addSystem('No session given: open a session from the dashboard.', 'error');
      markEnded();
      return false;
    }
    try {
      await C.api(`/admin/takeover/${encodeURIComponent(state.sessionId)}`, {
        token: state.token,
        method: 'POST',
      });
    } catch (error) {
      if (error.status === 409) {
        addSystem(error.message, 'error');
        markEnded();
        return false;
      }
      if (error.status === 404 && error.body && error.body.code !== 'NOT_FOUND')
        addSystem('Takeover is not available on this server.', 'error');
      else if (error.status === 404) addSystem('Takeover is not available for this session.', 'error');
    }
    void setupAdminTools();
    return true;
  }

  /** Canned replies next to the composer, the user's other sessions in the side panel, Resolve. */
  async function setupAdminTools() {
    ui.panelToggle.hidden = false;
    ui.resolve.hidden = false;
    ui.panel.hidden = false;
    document.body.classList.add('with-panel');
    const togglePanel = (open) => {
      document.body.classList.toggle('panel-open', open);
      ui.panelToggle.setAttribute('aria-expanded', String(open));
    };
    togglePanel(false);
    ui.panelToggle.addEventListener('click', () =>
      togglePanel(!document.body.classList.contains('panel-open')),
    );
    ui.panelClose.addEventListener('click', () => togglePanel(false));
    ui.resolve.addEventListener('click', () => void resolveHelp());
    ui.transcriptClose.addEventListener('click', () => ui.transcriptDialog.close());

    const [canned, detail] = await Promise.all([
      C.api('/admin/canned-replies', { token: state.token }).catch(() => null),
      C.api(`/admin/sessions/${encodeURIComponent(state.sessionId)}`, { token: state.token }).catch(
        () => null,
      ),
    ]);
    const replies = (canned && canned.data && canned.data.replies) || [];
    if (replies.length > 0) setupCannedReplies(replies);
    if (!detail) return;
    state.sessionUser = detail.data.user_id;
    ui.panelUser.replaceChildren(C.icon('user', 16), C.el('span', { text: detail.data.user_id }));
    try {
      const { data } = await C.api(
        `/admin/users/${encodeURIComponent(detail.data.user_id)}/sessions?sort_by=last_activity&limit=50`,
        { token: state.token },
      );
      const others = (Array.isArray(data) ? data : []).filter(
        (row) => (row.session_id || row.id) !== state.sessionId,
      );
      ui.panelSessions.replaceChildren(
        ...(others.length
          ? others.map(panelSessionItem)
          : [C.el('li', { class: 'muted', text: 'No other conversations.' })]),
      );
    } catch {
      ui.panelSessions.replaceChildren(C.el('li', { class: 'muted', text: 'Could not load them.' }));
    }
  }

  function panelSessionItem(row) {
    const id = row.session_id || row.id;
    const count = Number(row.message_count) || 0;
    return C.el(
      'li',
      {},
      C.el(
        'button',
        { type: 'button', class: 'panel-session', onclick: () => void openTranscript(id, row.name) },
        C.el('span', { class: 'conv-name', text: row.name || 'Untitled Chat' }),
        C.el(
          'span',
          { class: 'conv-meta' },
          `${C.relativeTime(row.last_activity)} · ${count} message${count === 1 ? '' : 's'}`,
          row.is_active ? ' · active' : '',
        ),
      ),
    );
  }

  async function openTranscript(id, name) {
    ui.transcriptTitle.textContent = name || 'Untitled Chat';
    ui.transcript.replaceChildren(C.el('p', { class: 'muted', text: 'Loading…' }));
    ui.transcriptDialog.showModal();
    try {
      const { data } = await C.api(`/admin/sessions/${encodeURIComponent(id)}`, { token: state.token });
      ui.transcript.replaceChildren(
        ...(data.messages || []).map((message) => {
          const { node, body } = bubble(message.sender, message.metadata, message.timestamp);
          if (message.type === 'file_upload' || message.type === 'voice_message')
            body.append(attachment(message));
          else if (message.sender === 'ai' || message.sender === 'admin') {
            body.classList.add('markdown');
            C.renderMarkdownInto(body, message.content || '');
          } else {
            body.classList.add('plain');
            body.textContent = message.content || '';
          }
          node.classList.remove('msg-mine');
          return node;
        }),
      );
    } catch (error) {
      ui.transcript.replaceChildren(C.el('p', { class: 'error', text: error.message }));
    }
  }

  function setupCannedReplies(replies) {
    ui.cannedBtn.hidden = false;
    ui.cannedMenu.replaceChildren(
      ...replies.map((text) =>
        C.el('button', {
          type: 'button',
          role: 'menuitem',
          class: 'canned-item',
          text,
          onclick: () => {
            ui.input.value = ui.input.value ? `${ui.input.value}\n${text}` : text;
            autoGrow();
            closeCanned();
            ui.input.focus();
          },
        }),
      ),
    );
    const closeCanned = () => {
      ui.cannedMenu.hidden = true;
      ui.cannedBtn.setAttribute('aria-expanded', 'false');
    };
    ui.cannedBtn.addEventListener('click', () => {
      const open = ui.cannedMenu.hidden;
      ui.cannedMenu.hidden = !open;
      ui.cannedBtn.setAttribute('aria-expanded', String(open));
      if (open) ui.cannedMenu.querySelector('button')?.focus();
    });
    ui.cannedMenu.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        closeCanned();
        ui.cannedBtn.focus();
      }
    });
  }

  async function resolveHelp() {
    ui.resolve.disabled = true;
    try {
      await C.api(`/admin/sessions/${encodeURIComponent(state.sessionId)}/resolve`, {
        token: state.token,
        method: 'POST',
      });
      addSystem('Help request marked as resolved.');
    } catch (error) {
      addSystem(error.status === 409 ? 'This session has no help request.' : error.message, 'error');
      ui.resolve.disabled = false;
    }
  }

  async function leave() {
    ui.leave.disabled = true;
    send({ type: 'admin_leave' });
    try {
      await C.api(`/admin/takeover/${encodeURIComponent(state.sessionId)}`, {
        token: state.token,
        method: 'DELETE',
      });
    } catch {
      /* already left, or the endpoint is missing: admin_leave was sent anyway */
    }
    setAssisted(null);
    markEnded();
    addSystem('You left the conversation.');
    setTimeout(() => {
      window.location.href = C.pageUrl('admin-page');
    }, 600);
  }

  function wireEvents() {
    ui.form.addEventListener('submit', (event) => {
      event.preventDefault();
      submitMessage();
    });
    ui.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submitMessage();
      }
    });
    ui.input.addEventListener('input', () => {
      autoGrow();
      noteTyping();
    });
    ui.stop.addEventListener('click', () => {
      state.focusAfterStream = true;
      send({ type: 'stop_generation' });
    });
    ui.help.addEventListener('click', () => {
      send({ type: 'help_request', content: 'The user asked for a human.' });
      state.helpPending = true;
      updateHelpButton();
      setTimeout(() => {
        state.helpPending = false;
        updateHelpButton();
      }, 10000);
    });
    ui.modelSelect.addEventListener('change', () =>
      send({ type: 'model_select', model_id: ui.modelSelect.value }),
    );
    ui.share.addEventListener('click', openShare);
    ui.shareCreate.addEventListener('click', () => void createShare());
    ui.shareCopy.addEventListener('click', () => void copyShare());
    ui.shareRevoke.addEventListener('click', () => void revokeShare());
    ui.shareClose.addEventListener('click', () => ui.shareDialog.close());
    ui.leave.addEventListener('click', () => void leave());
    ui.fileBtn.addEventListener('click', () => ui.fileInput.click());
    ui.cameraBtn.addEventListener('click', () => ui.cameraInput.click());
    ui.fileInput.addEventListener('change', () => {
      upload(ui.fileInput.files[0], false);
      ui.fileInput.value = '';
    });
    ui.cameraInput.addEventListener('change', () => {
      upload(ui.cameraInput.files[0], false);
      ui.cameraInput.value = '';
    });
    ui.voiceBtn.addEventListener('click', () => void toggleRecording());
    ui.messages.addEventListener('scroll', () => {
      state.pinned = nearBottom();
      if (state.pinned) ui.jump.hidden = true;
    });
    ui.jump.addEventListener('click', () => scrollToBottom(true));
    window.addEventListener('online', () => {
      if (!state.socket && !state.closedByUs) connect();
    });
  }

  function setupEmbedded() {
    document.body.classList.add('embedded');
    ui.embedClose.hidden = false;
    ui.embedClose.addEventListener('click', () =>
      window.parent.postMessage({ type: 'chatbox_close' }, C.parentOrigin()),
    );
  }

  /** Without a session id and without new=1, the user's active conversation is picked up again. */
  async function resumeActiveSession() {
    await loadSidebar();
    const active = state.sessions.find((row) => row.is_active);
    if (active) {
      state.sessionId = active.session_id || active.id;
      C.setParam('session_id', state.sessionId);
      renderSidebar();
    }
  }

  async function main() {
    ui.back.href = C.pageUrl('sessions');
    if (state.embedded) setupEmbedded();
    const shareToken = C.params.get('share_token');
    if (shareToken) return sharedView(shareToken);

    state.token = await C.resolveToken();
    const problem = state.token ? C.tokenProblem(state.token) : 'missing';
    if (problem) {
      updateWelcome();
      signedOut(problem);
      return;
    }
    wireEvents();
    if (state.adminMode) {
      if (!(await enterAdminMode())) return;
    } else {
      setupSidebar();
      if (C.params.get('new') === '1') await endActiveSessions();
      else if (!state.sessionId) await resumeActiveSession();
    }
    if (state.continueFrom && !state.sessionId) {
      ui.welcomeText.textContent =
        'This new conversation continues an earlier one. Your first message starts it.';
      noteContinuedFrom(state.continueFrom);
    }
    if (state.sessionId) {
      ui.share.disabled = state.adminMode;
      try {
        const { data } = await C.api(`/sessions/${encodeURIComponent(state.sessionId)}`, {
          token: state.token,
        });
        renderHistory(data.messages);
        applySessionInfo(data);
      } catch (error) {
        if (error.status === 401) return signedOut(C.tokenRefusal(error));
        addSystem(
          error.status === 404
            ? 'This conversation was not found. Your next message starts a new one.'
            : error.message,
          'error',
        );
        if (error.status === 404) {
          state.sessionId = null;
          C.setParam('session_id', null);
          ui.share.disabled = true;
        }
      }
    }
    updateWelcome();
    void loadSidebar();
    if (state.ended && !state.adminMode) return;
    connect();
    ui.input.focus();
  }

  void main();
})();
