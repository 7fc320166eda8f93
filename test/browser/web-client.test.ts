import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Browser, Page } from 'playwright-core';
import { FakeOpenAi, startFakeOpenAi, openAiProviderEnv, FAKE_GPT } from '../support/fake-llm';
import { startTestApp, TestApp } from '../support/app';
import {
  lastAi,
  launchChromium,
  PageTracker,
  rest as restAt,
  sendMessage,
  squash,
  waitForReplyDone,
  words,
} from '../support/browser';
import { adminToken, userToken } from '../support/tokens';

// Browser-side globals used inside page.evaluate callbacks (this project compiles without the DOM lib).
interface BrowserNode {
  textContent: string | null;
}
declare const document: {
  body: unknown;
  querySelectorAll(selector: string): ArrayLike<BrowserNode>;
  getElementById(id: string): unknown;
};
declare const window: {
  __seen: string[];
  __busyShown: boolean;
  __chatbox: { socket: { close(): void }; sessionId: string | null };
};
declare class MutationObserver {
  constructor(callback: () => void);
  observe(target: unknown, options: object): void;
}
declare function getComputedStyle(node: unknown): { overflowX: string; fontFamily: string };
declare class Image {
  onerror: (() => void) | null;
  onload: (() => void) | null;
  src: string;
}

const SCREENSHOTS = resolve(__dirname, '../../test-artifacts/screenshots');
const WIDTHS = [1280, 375];

const MARKDOWN_REPLY = [
  'Here is a comparison:\n\n',
  '| Plan | Price |\n',
  '| --- | --- |\n',
  '| Basic | 5 |\n',
  '| Pro | 20 |\n\n',
  '```js\n',
  'const answer = compute("a fairly long line of code that should scroll sideways rather than wrap", 42);\n',
  '```\n\n',
  'And a hostile image: <img src=x onerror=alert(1)> ',
  '<script>alert(2)</script> done.',
];

describe('web client in Chromium (sessions, chat, admin)', () => {
  let t: TestApp;
  let fake: FakeOpenAi;
  let browser: Browser;
  const pages = new PageTracker(() => browser);
  const dialogs = pages.dialogs;
  /** Session ids made by earlier tests, reused for the screenshots. */
  const made: { markdown?: string } = {};

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    fake = await startFakeOpenAi();
    t = await startTestApp({
      ...openAiProviderEnv(fake, FAKE_GPT),
      ...openAiProviderEnv(fake, { n: 2, id: 'fake-2', name: 'Fake Second', apiKey: 'test-key' }),
    });
    browser = await launchChromium();
  });
  beforeEach(() => fake.reset().script({ chunks: words(12), delayMs: 60 }));
  afterEach(() => pages.closeAll());
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await fake?.close();
  });

  const newPage = (width?: number) => pages.newPage(width);
  const rest = (path: string, token: string, init?: RequestInit) => restAt(t.baseUrl, path, token, init);

  async function shoot(page: Page, name: string): Promise<void> {
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: width > 600 ? 800 : 740 });
      await page.waitForTimeout(150);
      await page.screenshot({ path: resolve(SCREENSHOTS, `${name}-${width}.png`), fullPage: false });
    }
  }

  it('serves the pages and assets with a strict CSP, nosniff and the right content types', async () => {
    const page = await fetch(`${t.baseUrl}/chat`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    for (const path of ['/', '/sessions-page', '/admin-page'])
      expect((await fetch(`${t.baseUrl}${path}`)).status).toBe(200);
    const bare = await fetch(t.baseUrl, { redirect: 'manual' });
    expect(bare.status).toBe(301);
    expect(bare.headers.get('location')).toBe(`${t.config.pathPrefix}/`);
    for (const [path, type] of [
      ['/assets/vendor/marked.js', /^text\/javascript/],
      ['/assets/vendor/purify.js', /^text\/javascript/],
      ['/assets/style.css', /^text\/css/],
      ['/assets/chat.js', /^text\/javascript/],
    ] as const) {
      const response = await fetch(`${t.baseUrl}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(type);
    }
    for (const path of ['/assets/vendor/other.js', '/assets/..%2Fchat.html', '/assets/.secret.js'])
      expect((await fetch(`${t.baseUrl}${path}`)).status).toBe(404);
  });

  it('a user starts a chat, watches it stream, reloads, shares it; the share link reads without a token', async () => {
    const token = userToken('alice', { name: 'Alice' });
    const page = await newPage();
    await page.goto(`${t.baseUrl}/?token=${token}`);
    await page.getByText('No conversations yet').waitFor();
    expect(page.url()).not.toContain('token='); // moved to sessionStorage
    await page.getByRole('button', { name: '+ New Chat' }).click();
    await page.waitForURL(/\/chat/);
    await page.locator('#conn[data-state="connected"]').waitFor();
    // Two models configured: the selector is shown.
    await expect(page.locator('#model-wrap').isVisible()).resolves.toBe(true);

    // Record every distinct text the AI bubble shows while it streams, and whether the typing
    // indicator or the Stop button was ever shown (however briefly: a fast reply hides them again).
    await page.evaluate(() => {
      const seen: string[] = [];
      window.__seen = seen;
      window.__busyShown = false;
      new MutationObserver(() => {
        const bodies = document.querySelectorAll('.msg-ai .bubble-body');
        const text = bodies.length ? (bodies[bodies.length - 1].textContent ?? '') : '';
        if (text && seen[seen.length - 1] !== text) seen.push(text);
      }).observe(document.getElementById('messages'), {
        childList: true,
        subtree: true,
        characterData: true,
      });
      new MutationObserver(() => {
        const shown = ['typing', 'stop-btn'].some(
          (id) => (document.getElementById(id) as { hidden?: boolean } | null)?.hidden === false,
        );
        window.__busyShown ||= shown;
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['hidden'] });
    });
    await sendMessage(page, 'Hello there. How are you?');
    const full = squash(words(12).join(''));
    await page.waitForFunction(
      (expected) => {
        const bodies = document.querySelectorAll('.msg-ai .bubble-body');
        return (
          bodies.length > 0 &&
          (bodies[bodies.length - 1].textContent ?? '').replace(/\s+/g, ' ').trim() === expected
        );
      },
      full,
      { timeout: 15_000 },
    );
    await waitForReplyDone(page);
    await expect(page.evaluate(() => window.__busyShown)).resolves.toBe(true);
    const seen = await page.evaluate(() => window.__seen);
    const intermediate = seen.filter((text) => squash(text) !== full && squash(text) !== '');
    expect(intermediate.length).toBeGreaterThanOrEqual(3);
    // The socket adopted the server's session id and the URL carries it.
    const sessionId = new URL(page.url()).searchParams.get('session_id');
    expect(sessionId).toMatch(/^[0-9a-f]{32}$/);

    await page.reload();
    await page.locator('.msg-user', { hasText: 'Hello there. How are you?' }).waitFor();
    expect(squash(await lastAi(page).textContent())).toBe(full);
    await expect(page.locator('#chat-title').textContent()).resolves.toBe('Hello there.');

    await page.locator('#share-btn').click();
    // Nothing is public until the owner confirms.
    await page.getByRole('button', { name: 'Create link' }).click();
    // A function, not a string: polling a string predicate needs eval, which the page's CSP forbids.
    await page.waitForFunction(() =>
      (document.getElementById('share-url') as { value: string } | null)?.value.includes('share_token='),
    );
    const shareUrl = await page.locator('#share-url').inputValue();
    expect(shareUrl).toContain(`${t.config.pathPrefix}/chat?share_token=`);
    await page.locator('#share-close').click();

    await page.goto(`${t.baseUrl}/`);
    const card = page.locator('.session-card', { hasText: 'Hello there.' });
    await card.waitFor();
    await expect(card.textContent()).resolves.toContain('2 messages');
    await shoot(page, 'sessions');

    const viewer = await newPage();
    const sockets: string[] = [];
    viewer.on('websocket', (socket) => sockets.push(socket.url()));
    await viewer.goto(shareUrl);
    await viewer.locator('.msg-ai .bubble-body', { hasText: 'w11' }).waitFor();
    await viewer.getByText('Hello there. How are you?').waitFor();
    expect(await viewer.locator('#input').count()).toBe(0);
    expect(await viewer.locator('#readonly-note').isVisible()).toBe(true);
    // A chat page opens its socket right after rendering the history it fetched: a shared view,
    // rendered, never has one.
    expect(await viewer.evaluate(() => Boolean(window.__chatbox.socket))).toBe(false);
    expect(sockets).toEqual([]);
    await shoot(viewer, 'shared');
  });

  it('renders Markdown tables and code, and model output cannot run script', async () => {
    fake.script({ chunks: MARKDOWN_REPLY, delayMs: 40 });
    const before = dialogs.length;
    const page = await newPage();
    await page.goto(`${t.baseUrl}/chat?new=1&token=${userToken('bob')}`);
    await page.locator('#conn[data-state="connected"]').waitFor();
    await sendMessage(page, 'Compare the plans, with code');
    await lastAi(page).locator('table').waitFor();
    await waitForReplyDone(page);
    const bubble = lastAi(page);
    await expect(bubble.locator('th').allTextContents()).resolves.toEqual(['Plan', 'Price']);
    await expect(bubble.locator('td').allTextContents()).resolves.toEqual(['Basic', '5', 'Pro', '20']);
    await expect(bubble.locator('pre code').textContent()).resolves.toContain('const answer = compute(');
    expect(await bubble.locator('pre').evaluate((node) => getComputedStyle(node).overflowX)).toBe('auto');
    expect(await bubble.locator('pre').evaluate((node) => getComputedStyle(node).fontFamily)).toMatch(
      /mono/i,
    );
    expect(await bubble.locator('[onerror], script').count()).toBe(0);
    await expect(bubble.textContent()).resolves.toContain('done.');
    // An image that fails to load now reports after any that failed before it (the hostile one,
    // had it been created even for a moment): wait for this probe's error, then look for dialogs.
    await page.evaluate(
      () =>
        new Promise<void>((resolve) => {
          const probe = new Image();
          probe.onerror = probe.onload = () => resolve();
          probe.src = `x?probe=${Date.now()}`;
        }),
    );
    expect(dialogs.slice(before)).toEqual([]);
    made.markdown = (await page.evaluate(() => window.__chatbox.sessionId)) ?? undefined;
    await shoot(page, 'chat');
  });

  it('reconnects after the socket drops mid-reply and ends with exactly the stored reply', async () => {
    fake.script({ chunks: words(40, 'r'), delayMs: 60 });
    const token = userToken('carol');
    const page = await newPage();
    await page.goto(`${t.baseUrl}/chat?new=1&token=${token}`);
    await page.locator('#conn[data-state="connected"]').waitFor();
    await sendMessage(page, 'Tell me a long story');
    await lastAi(page).filter({ hasText: 'r5' }).waitFor();
    await page.evaluate(() => window.__chatbox.socket.close());
    await page.locator('#conn[data-state="reconnecting"]').waitFor();
    await page.locator('#conn[data-state="connected"]').waitFor({ timeout: 5_000 });
    await waitForReplyDone(page);
    await lastAi(page).filter({ hasText: 'r39' }).waitFor();

    const sessionId = await page.evaluate(() => window.__chatbox.sessionId);
    const detail = (await (await rest(`/sessions/${sessionId}`, token)).json()) as {
      messages: { sender: string; content: string }[];
    };
    const stored = detail.messages.filter((message) => message.sender === 'ai');
    expect(stored).toHaveLength(1);
    expect(squash(stored[0].content)).toBe(squash(words(40, 'r').join('')));
    expect(squash(await lastAi(page).textContent())).toBe(squash(stored[0].content));
    expect(await page.locator('.msg-ai').count()).toBe(1);
  });

  it('an admin sees a help request live, takes the session over, chats both ways and leaves', async () => {
    const admin = adminToken('root', 'Ada Admin');
    const probe = await rest('/admin/sessions', admin);
    const adminPage = await newPage();
    if (probe.status === 404) {
      // The admin REST API (another issue) is not in this build yet: the dashboard must still load.
      await adminPage.goto(`${t.baseUrl}/admin-page?token=${admin}`);
      await adminPage.getByText('not available on this server').first().waitFor();
      await shoot(adminPage, 'admin');
      console.warn('takeover journey skipped: GET /admin/sessions answers 404 in this build');
      return;
    }
    expect(probe.status).toBe(200);

    const user = await newPage();
    await user.goto(`${t.baseUrl}/chat?new=1&token=${userToken('dave', { name: 'Dave' })}`);
    await user.locator('#conn[data-state="connected"]').waitFor();
    await sendMessage(user, 'My order is missing');
    await user.locator('.msg-ai .bubble-body', { hasText: 'w11' }).waitFor();
    await waitForReplyDone(user);
    const sessionId = await user.evaluate(() => window.__chatbox.sessionId);

    await adminPage.goto(`${t.baseUrl}/admin-page?token=${admin}`);
    const row = adminPage.locator(`tr[data-session-id="${sessionId}"]`);
    await row.waitFor();
    await adminPage.locator('#conn[data-state="connected"]').waitFor();
    await adminPage.locator('.card').first().waitFor();
    await user.locator('#help-btn').click();
    await adminPage.locator(`tr.flash[data-session-id="${sessionId}"]`).waitFor({ timeout: 5_000 });
    await shoot(adminPage, 'admin');
    await adminPage.setViewportSize({ width: 1280, height: 800 });

    await adminPage
      .locator(`tr[data-session-id="${sessionId}"]`)
      .getByRole('button', { name: /Take over/ })
      .click();
    await adminPage.waitForURL(/admin=true/);
    await adminPage.locator('#conn[data-state="connected"]').waitFor();
    await user.locator('#assist-banner', { hasText: 'Ada Admin' }).waitFor();
    expect(await user.locator('#model-wrap').isVisible()).toBe(false);
    await adminPage.locator('#assist-banner', { hasText: 'Ada Admin' }).waitFor();
    await adminPage.locator('.msg', { hasText: 'My order is missing' }).waitFor();

    const aiRequests = fake.requestsTo('/chat/completions').length;
    await sendMessage(adminPage, 'Hi Dave, I am looking into it.');
    await user.locator('.msg-admin', { hasText: 'Hi Dave, I am looking into it.' }).waitFor();
    await sendMessage(user, 'Thank you!');
    await adminPage.locator('.msg-user', { hasText: 'Thank you!' }).waitFor();
    expect(fake.requestsTo('/chat/completions')).toHaveLength(aiRequests);

    await adminPage.locator('#leave-btn').click();
    await user.locator('#assist-banner').waitFor({ state: 'hidden' });
    await sendMessage(user, 'Is the AI back?');
    await user.locator('.msg-ai .bubble-body', { hasText: 'w11' }).nth(1).waitFor();
    expect(fake.requestsTo('/chat/completions').length).toBeGreaterThan(aiRequests);
  });

  it('takes screenshots of the three views at 1280 and 375 px', async () => {
    const page = await newPage();
    await page.goto(`${t.baseUrl}/?token=${userToken('bob')}`);
    await page.locator('.session-card').first().waitFor();
    await shoot(page, 'sessions-bob');
    if (made.markdown) {
      await page.goto(`${t.baseUrl}/chat?session_id=${made.markdown}`);
      await page.locator('.msg-ai table').waitFor();
      await shoot(page, 'chat-history');
    }
    const admin = await newPage();
    await admin.goto(`${t.baseUrl}/admin-page?token=${adminToken('root', 'Ada Admin')}`);
    await admin.locator('#rows tr').first().waitFor();
    await shoot(admin, 'admin-overview');
    expect(dialogs.filter((text) => text.startsWith('pageerror'))).toEqual([]);
  });
});
