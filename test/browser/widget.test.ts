import { readFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { Browser, Frame, Page } from 'playwright-core';
import { FakeOpenAi, startFakeOpenAi, openAiProviderEnv, FAKE_GPT } from '../support/fake-llm';
import { startTestApp, TestApp } from '../support/app';
import { launchChromium, PageTracker, screenshots, words } from '../support/browser';
import { userToken } from '../support/tokens';
import { until } from '../support/until';
import { freePort } from '../../libs/storage/src/embedded/free-port';

// Browser-side globals used inside evaluate callbacks (this project compiles without the DOM lib).
declare const window: { location: { ancestorOrigins: { length: number } } };
declare const document: { querySelector(selector: string): unknown };
declare function getComputedStyle(node: unknown): { backgroundColor: string };

const EXAMPLE = readFileSync(resolve(__dirname, '../../docs/widget-example.html'), 'utf8');

/** A host site on its own origin: the example page, a token endpoint, and a page with a token hook. */
async function startHost(chatBase: string): Promise<{ server: Server; origin: string; tokens: number }> {
  const host = { server: createServer(), origin: '', tokens: 0 };
  host.server.on('request', (request, response) => {
    if (request.url === '/api/chat-token') {
      host.tokens += 1;
      response.writeHead(200, { 'Content-Type': 'application/json' });
      return response.end(JSON.stringify({ token: userToken('widget-visitor', { name: 'Visitor' }) }));
    }
    const page =
      request.url === '/hook'
        ? `<!doctype html><html><body><h1>Hook page</h1>
           <script src="/hook.js"></script>
           <script src="${chatBase}/widget.js" data-title="Support"></script></body></html>`
        : request.url === '/manual'
          ? // An iframe made by hand (no widget, so no host parameter) that answers request_token itself.
            `<!doctype html><html><body><h1>Manual page</h1>
             <iframe id="chat" title="Chat" src="${chatBase}/chat?embed=1" width="400" height="600"></iframe>
             <script>
               window.addEventListener('message', (event) => {
                 const chat = document.getElementById('chat');
                 if (event.source !== chat.contentWindow || (event.data || {}).type !== 'request_token') return;
                 chat.contentWindow.postMessage(
                   { type: 'token', token: ${JSON.stringify(userToken('manual-visitor'))} },
                   event.origin,
                 );
               });
             </script></body></html>`
          : EXAMPLE.replace('http://localhost:8080/chatbox', chatBase);
    if (request.url === '/hook.js') {
      response.writeHead(200, { 'Content-Type': 'text/javascript' });
      return response.end(
        `window.ChatboxWidget = { getToken: () => Promise.resolve(${JSON.stringify(userToken('hook-visitor'))}) };`,
      );
    }
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    response.end(page);
  });
  await new Promise<void>((done) => host.server.listen(0, '127.0.0.1', done));
  host.origin = `http://127.0.0.1:${(host.server.address() as AddressInfo).port}`;
  return host;
}

describe('embeddable widget in Chromium', () => {
  let t: TestApp;
  let fake: FakeOpenAi;
  let browser: Browser;
  let host: Awaited<ReturnType<typeof startHost>>;
  let stranger: Awaited<ReturnType<typeof startHost>>;
  const pages = new PageTracker(() => browser);

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    fake.script({ chunks: words(5), delayMs: 5 });
    const port = await freePort();
    const chatBase = `http://127.0.0.1:${port}/chatbox`;
    host = await startHost(chatBase);
    stranger = await startHost(chatBase); // a site that is not in ALLOWED_ORIGINS
    t = await startTestApp({
      PORT: String(port),
      CHATBOX_PATH_PREFIX: '/chatbox',
      // The chat's own origin (its socket) and the host site that embeds it.
      ALLOWED_ORIGINS: `http://127.0.0.1:${port},${host.origin}`,
      ...openAiProviderEnv(fake, FAKE_GPT),
    });
    browser = await launchChromium();
  });
  afterEach(() => pages.closeAll());
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await fake?.close();
    await new Promise((done) => host?.server.close(done));
    await new Promise((done) => stranger?.server.close(done));
  });

  async function chatFrame(page: Page, selector = '.chatbox-widget-panel iframe'): Promise<Frame> {
    const handle = await page.locator(selector).elementHandle();
    const frame = await handle!.contentFrame();
    return frame!;
  }

  /** The user whose token the chat in `frame` connected with (read from its socket's address). */
  async function userOf(frame: Frame): Promise<string> {
    const url = await frame.evaluate(
      () => (window as unknown as { __chatbox: { socket: { url: string } } }).__chatbox.socket.url,
    );
    const token = new URL(url).searchParams.get('token') ?? '';
    return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')).user_id;
  }

  /**
   * Firefox has no `location.ancestorOrigins`. Chromium's cannot be deleted (an unforgeable
   * property), so every frame of the page sees it empty instead: the chat must find its host
   * page some other way.
   */
  async function withoutAncestorOrigins(page: Page): Promise<void> {
    await page.addInitScript(() =>
      Object.defineProperty(
        (globalThis as unknown as { DOMStringList: { prototype: object } }).DOMStringList.prototype,
        'length',
        { get: () => 0, configurable: true },
      ),
    );
  }

  /** The widget panel's background colour. */
  const panelBackground = (page: Page) =>
    page.locator('.chatbox-widget-panel').evaluate((node) => getComputedStyle(node).backgroundColor);

  it('the script adds a bubble; the chat opens in an iframe with a token from the token endpoint', async () => {
    const page = await pages.newPage();
    await page.goto(`${host.origin}/`);
    const bubble = page.getByRole('button', { name: 'Open chat: Chat with Northwind' });
    await bubble.waitFor();
    const tokensBefore = host.tokens;
    await bubble.click();
    const frame = await chatFrame(page);
    await frame.locator('#conn[data-state="connected"]').waitFor();
    expect(host.tokens).toBe(tokensBefore + 1);
    await frame.locator('#input').fill('Do you ship to Norway?');
    await frame.locator('#input').press('Enter');
    await frame.locator('.msg-ai .bubble-body', { hasText: 'w4' }).waitFor();
    const rows = (await (
      await fetch(`${t.baseUrl}/sessions`, {
        headers: { Authorization: `Bearer ${userToken('widget-visitor')}` },
      })
    ).json()) as { sessions: { name: string }[] };
    expect(rows.sessions[0].name).toBe('Do you ship to Norway?');
    await screenshots(page, 'widget');

    // The chat's own close button closes the panel.
    await page.setViewportSize({ width: 1280, height: 800 });
    await frame.getByRole('button', { name: 'Close the chat' }).click();
    await page.locator('.chatbox-widget-panel').waitFor({ state: 'hidden' });
    await expect(
      page.getByRole('button', { name: 'Open chat: Chat with Northwind' }).isVisible(),
    ).resolves.toBe(true);
  });

  it('answers request_token from the host page hook when there is no token endpoint', async () => {
    const page = await pages.newPage();
    await page.goto(`${host.origin}/hook`);
    await page.getByRole('button', { name: 'Open chat: Support' }).click();
    const frame = await chatFrame(page);
    await frame.locator('#conn[data-state="connected"]').waitFor();
    expect(await userOf(frame)).toBe('hook-visitor');
  });

  it('without location.ancestorOrigins (Firefox) the host page still gets request_token, answers it, and Close works', async () => {
    const page = await pages.newPage();
    await withoutAncestorOrigins(page);
    await page.goto(`${host.origin}/hook`);
    await page.getByRole('button', { name: 'Open chat: Support' }).click();
    const frame = await chatFrame(page);
    await frame.locator('#conn[data-state="connected"]').waitFor();
    await expect(frame.evaluate(() => window.location.ancestorOrigins.length)).resolves.toBe(0);
    expect(await userOf(frame)).toBe('hook-visitor');
    await frame.getByRole('button', { name: 'Close the chat' }).click();
    await page.locator('.chatbox-widget-panel').waitFor({ state: 'hidden' });

    // An iframe made by hand carries no host parameter: the frame's referrer names the host page.
    const manual = await pages.newPage();
    await withoutAncestorOrigins(manual);
    await manual.goto(`${host.origin}/manual`);
    const manualFrame = await chatFrame(manual, '#chat');
    await manualFrame.locator('#conn[data-state="connected"]').waitFor();
    expect(await userOf(manualFrame)).toBe('manual-visitor');
  });

  it('the panel around the chat follows the theme: the system one, then the chat toggle', async () => {
    const page = await pages.newPage();
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${host.origin}/hook`);
    await page.getByRole('button', { name: 'Open chat: Support' }).click();
    await expect(panelBackground(page)).resolves.toBe('rgb(15, 18, 23)');
    const frame = await chatFrame(page);
    await frame.locator('#conn[data-state="connected"]').waitFor();
    // In the narrow panel the toggle sits in the conversation drawer.
    await frame.getByRole('button', { name: 'Show the conversation list' }).click();
    await frame.locator('.sidebar-foot .theme-toggle').click();
    await page.waitForFunction(
      () =>
        getComputedStyle(document.querySelector('.chatbox-widget-panel')!).backgroundColor ===
        'rgb(246, 247, 249)',
    );
  });

  it('frame-ancestors follows ALLOWED_ORIGINS: another site cannot frame the chat', async () => {
    const response = await fetch(`${t.baseUrl}/chat`);
    expect(response.headers.get('content-security-policy')).toContain(`frame-ancestors 'self' `);
    expect(response.headers.get('content-security-policy')).toContain(host.origin);
    expect(response.headers.get('content-security-policy')).not.toContain(stranger.origin);
    const widget = await fetch(`${t.baseUrl}/widget.js`);
    expect(widget.status).toBe(200);
    expect(widget.headers.get('content-type')).toMatch(/^text\/javascript/);

    const page = await pages.newPage();
    const blocked: string[] = [];
    page.on('console', (message) => {
      if (/frame-ancestors/.test(message.text())) blocked.push(message.text());
    });
    await page.goto(`${stranger.origin}/`);
    await page.getByRole('button', { name: /Open chat/ }).click();
    const handle = await page.locator('.chatbox-widget-panel iframe').elementHandle();
    await until(() => blocked.length > 0, 10_000, 50);
    const frame = await handle!.contentFrame();
    expect(
      await frame
        ?.locator('#messages')
        .count()
        .catch(() => 0),
    ).toBe(0);
  });
});
