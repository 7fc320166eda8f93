import {
  escapeHtml,
  excerpt,
  EXCERPT_MAX_CHARS,
  formatDuration,
  formatTimestamp,
  sessionLink,
} from './format';
import {
  renderDatabaseRecovered,
  renderDatabaseUnreachable,
  renderHelpRequest,
  renderLlmFailing,
  renderRateLimitSpike,
} from './templates';

const AT = new Date('2025-03-04T05:06:07.890Z');
const AT_TEXT = '2025-03-04T05:06:07Z';

describe('format helpers', () => {
  it('formats RFC 3339 UTC without milliseconds', () => {
    expect(formatTimestamp(AT)).toBe(AT_TEXT);
  });

  it('formats durations for humans', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(45_000)).toBe('45s');
    expect(formatDuration(300_000)).toBe('5m');
    expect(formatDuration(125_000)).toBe('2m 5s');
    expect(formatDuration(3_780_000)).toBe('1h 3m');
  });

  it('collapses whitespace and cuts long excerpts without splitting a surrogate pair', () => {
    expect(excerpt('  hello\n\n  world\t ')).toBe('hello world');
    expect(excerpt(undefined)).toBe('');
    const long = '😀'.repeat(EXCERPT_MAX_CHARS + 10);
    const cut = excerpt(long);
    expect(Array.from(cut)).toHaveLength(EXCERPT_MAX_CHARS);
    expect(cut.endsWith('…')).toBe(true);
    expect(cut).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });

  it('escapes HTML', () => {
    expect(escapeHtml(`<script>alert("x")</script> & 'y'`)).toBe(
      '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;',
    );
  });

  it('builds the session link from a base, a base with a query, or none', () => {
    expect(sessionLink('https://admin.example.com/panel', 's 1')).toBe(
      'https://admin.example.com/panel?session_id=s+1',
    );
    expect(sessionLink('https://admin.example.com/panel?tab=live', 's1')).toBe(
      'https://admin.example.com/panel?tab=live&session_id=s1',
    );
    expect(sessionLink(undefined, 's1')).toBe('?session_id=s1');
  });
});

describe('help request template', () => {
  const alert = {
    userId: 'user-42',
    sessionId: 'sess-9',
    sessionName: 'Billing question',
    lastUserMessage: 'I need <b>a human</b> & now',
    at: AT,
  };

  it('has the exact subject and SMS body of SPEC 7', () => {
    const rendered = renderHelpRequest(alert, AT, 'https://admin.example.com/panel');
    expect(rendered.subject).toBe('Help Request - User user-42');
    expect(rendered.sms).toBe('Help Request - User user-42 needs assistance. Session: sess-9');
  });

  it('puts user, session, name, time, affected users, excerpt and link in the text body', () => {
    const { text } = renderHelpRequest(alert, AT, 'https://admin.example.com/panel');
    for (const expected of [
      'User: user-42',
      'Session: sess-9',
      'Session name: Billing question',
      `Time: ${AT_TEXT}`,
      'Affected users: 1',
      'Last user message: I need <b>a human</b> & now',
      'https://admin.example.com/panel?session_id=sess-9',
    ])
      expect(text).toContain(expected);
  });

  it('escapes every user-provided value in the HTML body', () => {
    const { html } = renderHelpRequest(
      { ...alert, userId: 'u<1>', sessionName: '<img src=x onerror=alert(1)>' },
      AT,
      'https://admin.example.com/panel',
    );
    expect(html).toContain('I need &lt;b&gt;a human&lt;/b&gt; &amp; now');
    expect(html).toContain('u&lt;1&gt;');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>');
    expect(html).toContain('href="https://admin.example.com/panel?session_id=sess-9"');
  });

  it('prefers ADMIN_PANEL_URL, then the caller base, then a relative link', () => {
    const withBase = { ...alert, adminPanelBaseUrl: 'https://chat.example.com/chatbox/admin' };
    expect(renderHelpRequest(withBase, AT, 'https://configured.example.com').link).toBe(
      'https://configured.example.com?session_id=sess-9',
    );
    expect(renderHelpRequest(withBase, AT).link).toBe(
      'https://chat.example.com/chatbox/admin?session_id=sess-9',
    );
    expect(renderHelpRequest(alert, AT).link).toBe('?session_id=sess-9');
  });

  it('keeps header and SMS single-line even for a hostile user id', () => {
    const rendered = renderHelpRequest({ ...alert, userId: 'evil\r\nBcc: x@y' }, AT);
    expect(rendered.subject).not.toMatch(/[\r\n]/);
    expect(rendered.sms).not.toMatch(/[\r\n]/);
  });

  it('gives string-only structured fields for dashboards and webhooks', () => {
    const { fields } = renderHelpRequest(alert, AT, 'https://admin.example.com/panel');
    expect(fields).toEqual({
      event: 'help_requested',
      time: AT_TEXT,
      user_id: 'user-42',
      session_id: 'sess-9',
      session_name: 'Billing question',
      last_user_message: 'I need <b>a human</b> & now',
      affected_users: '1',
      admin_url: 'https://admin.example.com/panel?session_id=sess-9',
    });
  });
});

describe('operational alert templates name the affected users count and the time', () => {
  const cases = [
    renderLlmFailing(
      { providerId: 'openai-main', consecutiveFailures: 5, failureRatio: 0.625, affectedUsers: 12 },
      AT,
    ),
    renderDatabaseUnreachable({ since: new Date(AT.getTime() - 45_000), affectedUsers: 7 }, AT),
    renderDatabaseRecovered({ downForMs: 125_000, affectedUsers: 7 }, AT),
    renderRateLimitSpike({ limiter: 'user', blockedCount: 340, affectedUsers: 3, windowMs: 60_000 }, AT),
  ];

  it.each(cases.map((rendered) => [rendered.event, rendered]))('%s', (_event, rendered) => {
    const count = rendered.fields.affected_users;
    for (const body of [rendered.text, rendered.html, rendered.sms, rendered.summary]) {
      expect(body).toContain(AT_TEXT);
      expect(body).toMatch(new RegExp(`Affected users(:|</th><td>) ?${count}\\b`));
    }
    expect(rendered.fields.time).toBe(AT_TEXT);
  });

  it('LLM failing names the provider, the streak and the failure ratio', () => {
    const [llm] = cases;
    expect(llm.subject).toBe('LLM Provider Failing - openai-main');
    expect(llm.sms).toContain('5 consecutive failures, 63% failed over 5m');
  });

  it('database alerts say since when and for how long', () => {
    expect(cases[1].subject).toBe('MongoDB Unreachable');
    expect(cases[1].text).toContain('Unreachable since: 2025-03-04T05:05:22Z');
    expect(cases[1].text).toContain('Down for: 45s');
    expect(cases[2].subject).toBe('MongoDB Recovered');
    expect(cases[2].sms).toContain('after 2m 5s');
  });

  it('rate-limit spike names the limiter, the blocked count and the window', () => {
    expect(cases[3].subject).toBe('Abnormal Traffic - user rate limit');
    expect(cases[3].summary).toContain('340 requests blocked in 1m');
  });
});
