/* Chat view: streaming conversation over the WebSocket, history over REST, shares, uploads, takeover. */
(function () {
  'use strict';
  const C = window.Chatbox;
  const $ = (id) => document.getElementById(id);

  const ui = {
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
    leave: $('leave-btn'),
    readonlyNote: $('readonly-note'),
    messages: $('messages'),
    typing: $('typing'),
    typingLabel: $('typing-label'),
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
    uploadBox: $('upload-progress'),
    uploadBar: $('upload-bar'),
    uploadLabel: $('upload-label'),
    shareDialog: $('share-dialog'),
    shareUrl: $('share-url'),
    shareStatus: $('share-status'),
    shareCopy: $('share-copy'),
    shareRevoke: $('share-revoke'),
    shareClose: $('share-close'),
  };

  const state = {
    token: null,
    adminMode: C.params.get('admin') === 'true',
    sessionId: C.params.get('session_id') || null,
    ended: false,
    named: false,
    readonly: false,
    models: [],
    assistedBy: null,
    socket: null,
    connectedOnce: false,
    backoffMs: 1000,
    reconnectTimer: null,
    closedByUs: false,
    outbox: [],
    /** The reply being streamed: {messageId, lastSeq, text, done}. */
    streaming: null,
    /** message id → {el, body, text} for AI bubbles. */
    bubbles: new Map(),
    renderQueued: new Set(),
    renders: 0,
    typingTimer: null,
    typingSent: false,
    recorder: null,
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

  // ---------- rendering ----------

  function nearBottom() {
    const m = ui.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 48;
  }

  function scrollToBottom() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function appendNode(node) {
    const stick = nearBottom();
    ui.messages.append(node);
    if (stick) scrollToBottom();
  }

  function senderLabel(sender, metadata) {
    if (sender === 'ai') return 'Assistant';
    if (sender === 'admin') return (metadata && metadata.admin_name) || 'Support';
    if (sender === 'system') return 'System';
    return state.adminMode || state.readonly ? 'User' : 'You';
  }

  function isMine(sender) {
    return state.adminMode ? sender === 'admin' : sender === 'user';
  }

  function bubble(sender, metadata, timestamp) {
    const body = C.el('div', { class: 'bubble-body' });
    const node = C.el(
      'article',
      { class: `msg msg-${sender}${isMine(sender) ? ' msg-mine' : ''}` },
      C.el(
        'header',
        { class: 'msg-head' },
        C.el('span', { class: 'msg-sender', text: senderLabel(sender, metadata) }),
        timestamp ? C.el('time', { datetime: timestamp, text: C.formatTime(timestamp) }) : null,
      ),
      body,
    );
    return { node, body };
  }

  function addText(sender, content, { metadata, timestamp, markdown } = {}) {
    const { node, body } = bubble(sender, metadata, timestamp);
    if (markdown) {
      body.classList.add('markdown');
      body.innerHTML = C.renderMarkdown(content);
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
  }

  /** The AI bubble for a message id, created on first use. */
  function aiBubble(messageId, timestamp) {
    let entry = state.bubbles.get(messageId);
    if (!entry) {
      const { node, body } = bubble('ai', null, timestamp || new Date().toISOString());
      body.classList.add('markdown');
      node.dataset.messageId = messageId;
      entry = { el: node, body, text: '' };
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
      const stick = nearBottom();
      entry.body.innerHTML = C.renderMarkdown(entry.text);
      state.renders += 1;
      if (stick) scrollToBottom();
    });
  }

  function renderHistory(messages) {
    ui.messages.replaceChildren();
    state.bubbles.clear();
    for (const message of messages || []) {
      if (message.type === 'file_upload' || message.type === 'voice_message') {
        addAttachment(message, message.sender);
        continue;
      }
      if (message.sender === 'ai') {
        const entry = aiBubble(message.id || `h-${Math.random()}`, message.timestamp);
        entry.text = message.content || '';
        entry.body.innerHTML = C.renderMarkdown(entry.text);
        if (
          message.metadata &&
          (message.metadata.status === 'stopped' || message.metadata.status === 'interrupted')
        )
          entry.el.classList.add('msg-stopped');
        continue;
      }
      addText(message.sender, message.content || '', {
        metadata: message.metadata,
        timestamp: message.timestamp,
        markdown: message.sender === 'admin',
      });
    }
    scrollToBottom();
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
  }

  function updateModelSelector() {
    const show = state.models.length >= 2 && !state.assistedBy && !state.adminMode;
    ui.modelWrap.hidden = !show;
  }

  function setAssisted(name) {
    state.assistedBy = name || null;
    ui.assistBanner.hidden = !name;
    ui.assistName.textContent = name || '';
    updateModelSelector();
  }

  function adoptSession(id) {
    if (!id || id === state.sessionId) return;
    state.sessionId = id;
    C.setParam('session_id', id);
    C.dropParams(['new']);
    ui.share.disabled = state.adminMode;
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
    socket.addEventListener('open', () => {
      const wasReconnect = state.connectedOnce;
      state.connectedOnce = true;
      state.backoffMs = 1000;
      setConn('connected', 'Connected');
      if (resuming) {
        socket.send(
          JSON.stringify({
            type: 'stream_resume',
            session_id: state.sessionId,
            metadata: { message_id: resuming.messageId, last_seq: String(resuming.lastSeq) },
          }),
        );
      } else if (wasReconnect && state.sessionId) {
        void refreshHistory();
      }
      const queued = state.outbox.splice(0);
      for (const frame of queued) send(frame);
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
      if (event.code === 4001 || event.code === 4003) {
        setConn('offline', event.code === 4001 ? 'Signed out' : 'Not allowed');
        addSystem('Your sign-in is no longer valid. Reopen the link you were given.', 'error');
        return;
      }
      const delay = state.backoffMs;
      state.backoffMs = Math.min(state.backoffMs * 2, 30000);
      setConn('reconnecting', `Reconnecting in ${Math.round(delay / 1000)}s…`);
      state.reconnectTimer = setTimeout(connect, delay);
    });
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
    } catch {
      /* the title stays as it is */
    }
  }

  function applySessionInfo(data) {
    if (data.name) state.named = true;
    ui.title.textContent = data.name || 'Untitled Chat';
    document.title = `${data.name || 'Chat'} — Chat`;
    if (data.assisting_admin_name) setAssisted(data.assisting_admin_name);
    if (data.is_active === false) markEnded();
  }

  function markEnded() {
    state.ended = true;
    ui.input.disabled = true;
    ui.send.disabled = true;
    ui.help.disabled = true;
    ui.input.placeholder = 'This conversation has ended. Start a new chat from your chats.';
  }

  function handleFrame(frame) {
    if (frame.session_id && !state.adminMode) adoptSession(frame.session_id);
    const metadata = frame.metadata || {};
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
        if (frame.content && !Array.isArray(frame.models)) addSystem(frame.content);
        return;
      case 'loading':
        state.streaming = { messageId: metadata.message_id, lastSeq: -1, done: false };
        setTyping(true, 'Assistant is typing…');
        setStreaming(true);
        return;
      case 'ai_response':
        return aiResponse(frame, metadata);
      case 'user_message':
        addText(frame.sender || 'user', frame.content || '', {
          metadata,
          timestamp: frame.timestamp,
          markdown: frame.sender === 'admin',
        });
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
      setStreaming(false);
      if (!state.named) void refreshTitle();
      if (metadata.stopped === 'true') entry.el.classList.add('msg-stopped');
      if (metadata.error) entry.el.classList.add('msg-error');
    }
  }

  function handleError(frame) {
    const error = frame.error || {};
    let text = error.message || 'Something went wrong';
    if (error.code === 'TOO_MANY_REQUESTS' && error.retry_after)
      text += ` (try again in ${Math.ceil(error.retry_after / 1000)}s)`;
    addSystem(text, 'error');
    if (error.code === 'SESSION_ENDED') markEnded();
    if (state.streaming && !state.streaming.done && error.code && error.code.startsWith('LLM'))
      setTyping(false);
  }

  // ---------- composing ----------

  function submitMessage() {
    const content = ui.input.value.trim();
    if (!content || state.ended) return;
    addText(state.adminMode ? 'admin' : 'user', content, {
      timestamp: new Date().toISOString(),
      markdown: false,
    });
    scrollToBottom();
    send({ type: 'user_message', content });
    ui.input.value = '';
    autoGrow();
    stopTyping();
  }

  function autoGrow() {
    ui.input.style.height = 'auto';
    ui.input.style.height = `${Math.min(ui.input.scrollHeight, 160)}px`;
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
      addAttachment({ ...frame, timestamp: new Date().toISOString() }, state.adminMode ? 'admin' : 'user');
      send(frame);
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

  async function openShare() {
    if (!state.sessionId) return;
    ui.shareStatus.textContent = '';
    ui.shareUrl.value = 'Creating link…';
    if (typeof ui.shareDialog.showModal === 'function') ui.shareDialog.showModal();
    else ui.shareDialog.setAttribute('open', '');
    try {
      const { data } = await C.api(`/sessions/${encodeURIComponent(state.sessionId)}/share`, {
        token: state.token,
        method: 'POST',
      });
      ui.shareUrl.value = data.share_url;
      ui.shareUrl.select();
    } catch (error) {
      ui.shareUrl.value = '';
      ui.shareStatus.textContent = error.message;
    }
  }

  async function copyShare() {
    const url = ui.shareUrl.value;
    if (!url) return;
    try {
      await navigator.clipboard.writeText(url);
      ui.shareStatus.textContent = 'Link copied.';
    } catch {
      ui.shareUrl.select();
      const ok = document.execCommand && document.execCommand('copy');
      ui.shareStatus.textContent = ok ? 'Link copied.' : 'Select the link and copy it.';
    }
  }

  async function revokeShare() {
    try {
      await C.api(`/sessions/${encodeURIComponent(state.sessionId)}/share`, {
        token: state.token,
        method: 'DELETE',
      });
      ui.shareUrl.value = '';
      ui.shareStatus.textContent = 'Sharing stopped: the old link no longer works.';
    } catch (error) {
      ui.shareStatus.textContent = error.message;
    }
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
    return true;
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
    ui.stop.addEventListener('click', () => send({ type: 'stop_generation' }));
    ui.help.addEventListener('click', () => {
      send({ type: 'help_request', content: 'The user asked for a human.' });
      ui.help.disabled = true;
      setTimeout(() => (ui.help.disabled = state.ended), 10000);
    });
    ui.modelSelect.addEventListener('change', () =>
      send({ type: 'model_select', model_id: ui.modelSelect.value }),
    );
    ui.share.addEventListener('click', () => void openShare());
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
    if (!navigator.mediaDevices || !window.MediaRecorder) ui.voiceBtn.disabled = true;
    window.addEventListener('online', () => {
      if (!state.socket && !state.closedByUs) connect();
    });
  }

  async function main() {
    ui.back.href = C.pageUrl('sessions');
    const shareToken = C.params.get('share_token');
    if (shareToken) return sharedView(shareToken);

    state.token = await C.resolveToken();
    if (!state.token) {
      setConn('offline', 'Signed out');
      addSystem('Sign-in required: open this page with a token.', 'error');
      ui.input.disabled = true;
      return;
    }
    wireEvents();
    if (state.adminMode) {
      if (!(await enterAdminMode())) return;
    } else if (C.params.get('new') === '1') {
      await endActiveSessions();
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
    if (state.ended && !state.adminMode) return;
    connect();
    ui.input.focus();
  }

  void main();
})();
