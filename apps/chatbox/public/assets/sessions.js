/* Sessions view: the user's own conversations, newest first, and "+ New Chat". */
(function () {
  'use strict';
  const C = window.Chatbox;
  const list = document.getElementById('session-list');
  const status = document.getElementById('status');
  const newChat = document.getElementById('new-chat');
  const search = document.getElementById('search');
  let token = null;
  let rows = [];

  function setStatus(text, isError) {
    status.textContent = text;
    status.classList.toggle('error', Boolean(isError));
    status.hidden = !text;
  }

  function render() {
    list.replaceChildren();
    search.hidden = rows.length === 0;
    if (rows.length === 0) {
      setStatus('No conversations yet. Start one with “+ New Chat”.');
      return;
    }
    const query = search.value.trim().toLowerCase();
    const shown = rows.filter((row) => (row.name || 'Untitled Chat').toLowerCase().includes(query));
    setStatus(shown.length === 0 ? 'No conversation matches.' : '');
    for (const row of shown) {
      const id = row.session_id || row.id;
      const badges = C.el('span', { class: 'badges' });
      if (row.is_active) badges.append(C.el('span', { class: 'badge badge-active', text: 'Active' }));
      if (row.share_token) badges.append(C.el('span', { class: 'badge badge-muted', text: 'Shared' }));
      if (row.admin_assisted || row.assisting_admin_name)
        badges.append(C.el('span', { class: 'badge badge-assisted', text: 'Admin Assisted' }));
      const count = Number(row.message_count) || 0;
      const link = C.el(
        'a',
        { class: 'session-card', href: C.pageUrl('chat', { session_id: id }), 'data-session-id': id },
        C.el('span', { class: 'session-name', text: row.name || 'Untitled Chat' }),
        C.el(
          'span',
          { class: 'session-meta' },
          C.el('time', {
            datetime: row.last_activity,
            title: C.formatTime(row.last_activity),
            text: C.relativeTime(row.last_activity),
          }),
          C.el('span', { text: `${count} message${count === 1 ? '' : 's'}` }),
          badges,
        ),
      );
      list.append(C.el('li', {}, link));
    }
  }

  async function load() {
    try {
      const { data } = await C.api('/sessions', { token });
      rows = (data.sessions || []).slice();
      rows.sort((a, b) => new Date(b.last_activity).getTime() - new Date(a.last_activity).getTime());
      render();
      if (data.truncated) setStatus(`Showing the latest ${rows.length} conversations.`);
    } catch (error) {
      setStatus(error.status === 401 ? C.TOKEN_TEXT[C.tokenRefusal(error)] : error.message, true);
    }
  }

  async function startNewChat() {
    newChat.disabled = true;
    try {
      for (const row of rows.filter((r) => r.is_active)) {
        await C.api(`/sessions/${encodeURIComponent(row.session_id || row.id)}/end`, {
          token,
          method: 'POST',
        }).catch(() => undefined);
      }
    } finally {
      window.location.href = C.pageUrl('chat', { new: 1 });
    }
  }

  async function main() {
    token = await C.resolveToken();
    const problem = token ? C.tokenProblem(token) : 'missing';
    if (problem) {
      newChat.disabled = true;
      setStatus(C.TOKEN_TEXT[problem], true);
      return;
    }
    search.addEventListener('input', render);
    newChat.addEventListener('click', () => void startNewChat());
    await load();
    setInterval(() => {
      for (const time of list.querySelectorAll('time')) time.textContent = C.relativeTime(time.dateTime);
    }, 30000);
  }

  void main();
})();
