/**
 * The web client's `?api=` parameter (SPEC 9) never carries the user's token to a host the operator
 * did not list (WEB_CLIENT_API_ORIGINS); the page says it ignored the parameter, and the CSP lets the
 * page reach only its own host and the listed API origins.
 */
import { createServer, IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Browser } from 'playwright-core';
import { startTestApp, TestApp } from '../support/app';
import { launchChromium, PageTracker, sendMessage, waitConnected } from '../support/browser';
import { userToken } from '../support/tokens';
import { until } from '../support/until';

describe('web client: the api parameter and the CSP', () => {
  let page: TestApp;
  let api: TestApp;
  let stranger: Server;
  let strangerHost = '';
  const strangerRequests: string[] = [];
  let browser: Browser;
  const pages = new PageTracker(() => browser);

  beforeAll(async () => {
    stranger = createServer((request: IncomingMessage, response) => {
      strangerRequests.push(`${request.method} ${request.url}`);
      response.writeHead(200, { 'Access-Control-Allow-Origin': '*' }).end('{}');
    });
    stranger.on('upgrade', (request: IncomingMessage, socket) => {
      strangerRequests.push(`UPGRADE ${request.url}`);
      socket.destroy();
    });
    await new Promise<void>((resolve) => stranger.listen(0, '127.0.0.1', resolve));
    strangerHost = `127.0.0.1:${(stranger.address() as AddressInfo).port}`;
    // A second deployment serving only the API, for pages served from the first one.
    api = await startTestApp({ CORS_ALLOWED_ORIGINS: '*' });
    page = await startTestApp({ WEB_CLIENT_API_ORIGINS: new URL(api.baseUrl).origin });
    browser = await launchChromium();
  });
  afterEach(() => pages.closeAll());
  afterAll(async () => {
    await browser?.close();
    await page?.close();
    await api?.close();
    await new Promise<void>((resolve) => (stranger ? stranger.close(() => resolve()) : resolve()));
  });

  it('ignores an api host that is not configured, with a visible notice; the token never goes there', async () => {
    const tab = await pages.newPage();
    await tab.goto(`${page.baseUrl}/chat?token=${userToken('careful')}&api=${strangerHost}`);
    await tab.locator('.api-notice').waitFor();
    await expect(tab.locator('.api-notice').textContent()).resolves.toContain(strangerHost);
    await waitConnected(tab);
    await sendMessage(tab, 'Hello from the right server.');
    await tab.locator('.msg-ai .bubble-body').first().waitFor();
    expect(strangerRequests).toEqual([]);
    // The session is written in the background (the reply does not wait for it).
    await until(async () => (await page.db.collection('sessions').countDocuments({ uid: 'careful' })) === 1);
    expect(pages.pageErrors()).toEqual([]);
  });

  it('uses a configured api origin: the page served here chats with the other deployment', async () => {
    const tab = await pages.newPage();
    const apiHost = new URL(api.baseUrl).host;
    await tab.goto(`${page.baseUrl}/chat?token=${userToken('remote')}&api=${apiHost}`);
    await waitConnected(tab);
    await sendMessage(tab, 'Hello over there.');
    await tab.locator('.msg-ai .bubble-body').first().waitFor();
    expect(await tab.locator('.api-notice').count()).toBe(0);
    // Written in the background (the reply does not wait for it); then the other deployment has none.
    await until(async () => (await api.db.collection('sessions').countDocuments({ uid: 'remote' })) === 1);
    expect(await page.db.collection('sessions').countDocuments({ uid: 'remote' })).toBe(0);
  });

  it('limits connect-src to the page host and the configured API origins; the admin page is not frameable', async () => {
    const apiOrigin = new URL(api.baseUrl).origin;
    const chat = (await fetch(`${page.baseUrl}/chat`)).headers.get('content-security-policy') ?? '';
    const connect = chat.split('; ').find((directive) => directive.startsWith('connect-src')) ?? '';
    const host = new URL(page.baseUrl).host;
    expect(connect.split(' ').sort()).toEqual(
      [
        'connect-src',
        "'self'",
        `ws://${host}`,
        `wss://${host}`,
        apiOrigin,
        apiOrigin.replace('http:', 'ws:'),
      ].sort(),
    );
    expect(chat).toContain('frame-ancestors *');
    const admin = (await fetch(`${page.baseUrl}/admin-page`)).headers.get('content-security-policy') ?? '';
    expect(admin).toContain("frame-ancestors 'self'");
    expect(admin).not.toContain('frame-ancestors *');
    const unlisted = (await fetch(`${api.baseUrl}/chat`)).headers.get('content-security-policy') ?? '';
    expect(unlisted).not.toMatch(/ https?: | wss?: /);
  });
});
