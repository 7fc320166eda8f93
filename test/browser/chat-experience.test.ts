import { crc32, deflateSync } from 'node:zlib';
import { Browser, Page } from 'playwright-core';
import { FakeOpenAi, startFakeOpenAi, openAiProviderEnv } from '../support/fake-llm';
import { startTestApp, TestApp } from '../support/app';
import {
  lastAi,
  launchChromium,
  PageTracker,
  rest,
  screenshots,
  sendMessage,
  squash,
  waitConnected,
  waitForReplyDone,
  words,
} from '../support/browser';
import { expiredToken, foreignToken, userToken } from '../support/tokens';
import { until } from '../support/until';
import { TestClient } from '../support/ws-client';

// Browser-side globals used inside page.evaluate callbacks (this project compiles without the DOM lib).
interface Scroller {
  scrollTop: number;
  scrollHeight: number;
  clientHeight: number;
  dispatchEvent(event: unknown): void;
}
declare const document: {
  getElementById(id: string): Scroller;
  activeElement: { id: string } | null;
  body: unknown;
};
declare const window: { __chatbox: { sessionId: string | null; socket: { close(): void } } };
declare const navigator: { clipboard: { readText(): Promise<string> } };
declare function getComputedStyle(node: unknown): { backgroundColor: string };
declare class Event {
  constructor(type: string);
}

interface StoredMessage {
  id: string;
  sender: string;
  content: string;
  metadata?: Record<string, string>;
}

/** A decodable PNG of one colour. */
function solidPng(width: number, height: number, rgb: [number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const frame = Buffer.alloc(8 + data.length + 4);
    frame.writeUInt32BE(data.length, 0);
    typed.copy(frame, 4);
    frame.writeUInt32BE(crc32(typed), 8 + data.length);
    return frame;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  header[9] = 2;
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: width }, () => rgb).flat())]);
  return Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(Array.from({ length: height }, () => row)))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const CODE_REPLY = [
  'Here is how to read the file:\n\n',
  '```python\n',
  'def read_order(path):\n',
  '    with open(path) as handle:\n',
  '        return handle.read()  # the whole order\n',
  '```\n\n',
  '| Step | Time |\n| --- | --- |\n| Pack | 1 day |\n| Ship | 2 days |\n',
];

describe('chat experience in Chromium (sidebar, retry, scrolling, tokens, code, themes)', () => {
  let t: TestApp;
  let fake: FakeOpenAi;
  let browser: Browser;
  const pages = new PageTracker(() => browser);
  const clients: TestClient[] = [];

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    t = await startTestApp({
      ...openAiProviderEnv(fake, { id: 'fake-a', name: 'Fake Alpha', model: 'model-a', apiKey: 'test-key' }),
      ...openAiProviderEnv(fake, {
        n: 2,
        id: 'fake-b',
        name: 'Fake Beta',
        model: 'model-b',
        apiKey: 'test-key',
      }),
    });
    browser = await launchChromium();
  });
  beforeEach(() => fake.reset().script({ chunks: words(6), delayMs: 10 }));
  afterEach(async () => {
    await pages.closeAll();
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await fake?.close();
  });

  async function openChat(user: string, query = 'new=1', width = 1280): Promise<Page> {
    const page = await pages.newPage(width);
    await page.goto(`${t.baseUrl}/chat?${query}&token=${userToken(user)}`);
    await waitConnected(page);
    return page;
  }

  async function history(page: Page, user: string): Promise<StoredMessage[]> {
    const id = await page.evaluate(() => window.__chatbox.sessionId);
    const response = await rest(t.baseUrl, `/sessions/${id}`, userToken(user));
    return ((await response.json()) as { messages: StoredMessage[] }).messages;
  }

  /** The turns of the newest request the model received (the system prompt left out). */
  function modelTurns(): { role: string; content: string }[] {
    const body = fake.requestsTo('/chat/completions').at(-1)!.body as {
      messages: { role: string; content: string }[];
    };
    return body.messages.filter((turn) => turn.role !== 'system');
  }

  /** Distance from the bottom of the conversation, in px. */
  const fromBottom = (page: Page) =>
    page.evaluate(() => {
      const m = document.getElementById('messages');
      return m.scrollHeight - m.scrollTop - m.clientHeight;
    });

  it('keeps following the conversation after an image loads, and offers "Jump to latest" (15.3)', async () => {
    const page = await openChat('scroll-user');
    await sendMessage(page, Array.from({ length: 30 }, (_, index) => `line ${index}`).join('\n'));
    await waitForReplyDone(page);
    const chooser = page.waitForEvent('filechooser');
    await page.getByRole('button', { name: 'Attach a file' }).click();
    await (
      await chooser
    ).setFiles({ name: 'photo.png', mimeType: 'image/png', buffer: solidPng(240, 200, [20, 120, 200]) });
    await page.waitForFunction(() => {
      const img = (
        document as unknown as {
          querySelector(s: string): { complete: boolean; naturalWidth: number } | null;
        }
      ).querySelector('.attachment img');
      return Boolean(img && img.complete && img.naturalWidth > 0);
    });
    await sendMessage(page, 'And after the picture?');
    await lastAi(page).filter({ hasText: 'w5' }).nth(0).waitFor();
    await waitForReplyDone(page);
    await until(async () => (await fromBottom(page)) < 8);

    // Reading back: new content does not pull the reader down, a button offers the way back.
    await page.evaluate(() => {
      const m = document.getElementById('messages');
      m.scrollTop = 0;
      m.dispatchEvent(new Event('scroll'));
    });
    const other = await openChat(
      'scroll-user',
      `session_id=${await page.evaluate(() => window.__chatbox.sessionId)}`,
    );
    await sendMessage(other, 'A message from my phone');
    await page.locator('.msg-user', { hasText: 'A message from my phone' }).waitFor();
    const jump = page.getByRole('button', { name: 'Jump to latest' });
    await jump.waitFor();
    expect(await fromBottom(page)).toBeGreaterThan(100);
    await jump.click();
    await page.waitForFunction(() => {
      const m = document.getElementById('messages');
      return m.scrollHeight - m.scrollTop - m.clientHeight < 8;
    });
  });

  it('a failed reply shows on its bubble with Retry, and Retry answers without repeating the question (15.5)', async () => {
    fake.scriptOnce({ status: 400 });
    const page = await openChat('retry-user');
    await sendMessage(page, 'What is the delivery time?');
    const failed = page.locator('.msg-ai.msg-error');
    await failed.locator('.msg-error-note').waitFor();
    // No separate error note above an empty "Assistant" bubble.
    await expect(page.locator('.system-error').count()).resolves.toBe(0);
    const failedId = await failed.getAttribute('data-message-id');
    await failed.getByRole('button', { name: 'Retry' }).click();
    await lastAi(page).filter({ hasText: 'w5' }).waitFor();
    await waitForReplyDone(page);
    await expect(page.locator('.msg-ai').count()).resolves.toBe(1);
    await expect(page.locator('.msg-user').count()).resolves.toBe(1);
    const stored = await history(page, 'retry-user');
    expect(stored.filter((m) => m.sender === 'user').map((m) => m.content)).toEqual([
      'What is the delivery time?',
      'What is the delivery time?',
    ]);
    // The repeated question names the reply it replaces (the failed one, kept with its error status
    // when the provider had sent anything).
    expect(stored.find((m) => m.metadata?.regenerate_of)?.metadata?.regenerate_of).toBe(failedId);
    // What the model read: the question once.
    expect(modelTurns()).toEqual([{ role: 'user', content: 'What is the delivery time?' }]);
    // After a reload the replaced reply and the repeated question stay hidden.
    await page.reload();
    await waitConnected(page);
    await lastAi(page).filter({ hasText: 'w5' }).waitFor();
    await expect(page.locator('.msg-ai').count()).resolves.toBe(1);
    await expect(page.locator('.msg-user').count()).resolves.toBe(1);

    // Regenerate the answer that worked.
    fake.script({ chunks: words(5, 'again'), delayMs: 5 });
    await page.getByRole('button', { name: 'Regenerate the reply' }).click();
    await lastAi(page).filter({ hasText: 'again4' }).waitFor();
    await expect(page.locator('.msg-ai').count()).resolves.toBe(1);
    // Neither the replaced answer nor the question twice.
    expect(modelTurns()).toEqual([{ role: 'user', content: 'What is the delivery time?' }]);
  });

  it('without a valid token nothing that needs one is enabled, and the words say what is wrong (15.6)', async () => {
    const cases: [string, RegExp][] = [
      ['not-a-token', /not valid/],
      [expiredToken('late-user'), /expired/],
      [foreignToken('forged-user'), /not accepted/],
    ];
    for (const [token, words] of cases) {
      const page = await pages.newPage();
      await page.goto(`${t.baseUrl}/chat?token=${token}`);
      await page.locator('.system-error', { hasText: words }).waitFor();
      for (const id of ['#send-btn', '#file-btn', '#help-btn', '#input'])
        await expect([id, await page.locator(id).isDisabled()]).toEqual([id, true]);
      await expect(page.locator('#conn').getAttribute('data-state')).resolves.toBe('offline');
    }
    const sessions = await pages.newPage();
    await sessions.goto(`${t.baseUrl}/?token=abc.def.ghi`);
    await sessions.getByText(/not valid/).waitFor();
  });

  it('an offline message waits visibly; model names, Stop focus and Share confirmation (15.7)', async () => {
    const page = await openChat('details-user');
    const shares: string[] = [];
    page.on('request', (request) => {
      if (request.method() === 'POST' && request.url().endsWith('/share')) shares.push(request.url());
    });
    await page.getByLabel('Model').selectOption('fake-b');
    await page.locator('.system-note', { hasText: 'Model changed to Fake Beta' }).waitFor();

    fake.script({ chunks: words(60, 's'), delayMs: 60 });
    await sendMessage(page, 'Count slowly');
    await lastAi(page).filter({ hasText: 's2' }).waitFor();
    await page.getByRole('button', { name: 'Stop' }).click();
    await waitForReplyDone(page);
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('input');

    fake.script({ chunks: words(3, 'back'), delayMs: 5 });
    await page.evaluate(() => window.__chatbox.socket.close());
    await page.locator('#conn[data-state="reconnecting"]').waitFor();
    await sendMessage(page, 'Typed while offline');
    const pending = page.locator('.msg-user.msg-pending', { hasText: 'Typed while offline' });
    await pending.waitFor();
    await expect(pending.textContent()).resolves.toContain('Not sent yet');
    await pending.waitFor({ state: 'detached', timeout: 10_000 }).catch(() => undefined);
    await page.locator('.msg-user:not(.msg-pending)', { hasText: 'Typed while offline' }).waitFor();
    await lastAi(page).filter({ hasText: 'back2' }).waitFor();

    await page.locator('#share-btn').click();
    await page.getByRole('button', { name: 'Create link' }).waitFor();
    expect(shares).toEqual([]);
    await page.getByRole('button', { name: 'Create link' }).click();
    await page.locator('#share-url').waitFor();
    expect(await page.locator('#share-url').inputValue()).toContain('share_token=');
    expect(shares).toHaveLength(1);
  });

  it('the sidebar lists, searches, renames and deletes conversations; on a phone it is a drawer', async () => {
    const user = 'sidebar-user';
    for (const text of ['Shipping to Norway', 'Return a jacket', 'Gift card balance']) {
      const socket = await TestClient.connect(t.wsUrl, { token: userToken(user) });
      clients.push(socket);
      await socket.waitForType('connection_status');
      socket.send({ type: 'user_message', content: text });
      await socket.waitForReply();
    }
    const page = await openChat(user, 'x=1');
    const list = page.locator('#conv-list');
    await list.locator('.conv-item', { hasText: 'Gift card balance' }).waitFor();
    // Opened without a session id, the active conversation (the newest) is shown.
    await page.locator('.msg-user', { hasText: 'Gift card balance' }).waitFor();
    await expect(list.locator('.conv-item').count()).resolves.toBe(3);
    await page.getByLabel('Search conversations').fill('JACK');
    await expect(list.locator('.conv-item').allTextContents()).resolves.toEqual([
      expect.stringContaining('Return a jacket'),
    ]);
    await page.getByLabel('Search conversations').fill('');

    await page.getByRole('button', { name: 'Rename “Shipping to Norway”' }).click();
    await page.getByLabel('New name').fill('Delivery to Oslo');
    await page.getByLabel('New name').press('Enter');
    await list.locator('.conv-item', { hasText: 'Delivery to Oslo' }).waitFor();
    await page.getByRole('button', { name: 'Delete “Return a jacket”' }).click();
    await page.locator('#confirm-dialog').getByRole('button', { name: 'Delete' }).click();
    await list.locator('.conv-item', { hasText: 'Return a jacket' }).waitFor({ state: 'detached' });
    const rows = (
      (await (await rest(t.baseUrl, '/sessions', userToken(user))).json()) as {
        sessions: { name: string }[];
      }
    ).sessions.map((row) => row.name);
    expect(rows.sort()).toEqual(['Delivery to Oslo', 'Gift card balance']);

    await page.setViewportSize({ width: 375, height: 740 });
    const sidebar = page.locator('#sidebar');
    const inView = async () =>
      sidebar.evaluate(
        (node) =>
          (node as unknown as { getBoundingClientRect(): { right: number } }).getBoundingClientRect().right >
          10,
      );
    // The sidebar slides (a CSS transition): wait for where it must end up.
    await until(async () => !(await inView()));
    await page.getByRole('button', { name: 'Show the conversation list' }).click();
    await until(inView);
    await screenshots(page, 'chat-sidebar');
    await page.setViewportSize({ width: 375, height: 740 });
    await page.keyboard.press('Escape');
    await until(async () => !(await inView()));
  });

  it('the sidebar search says what it searches: the names of the newest 100 conversations, in the page', async () => {
    const user = 'many-chats-user';
    const start = Date.now() - 200 * 60_000;
    // 101 ended conversations, written as the service stores them (older data needs no model reply).
    await t.db.collection('sessions').insertMany(
      Array.from({ length: 101 }, (_, index) => {
        const at = new Date(start + index * 60_000);
        return {
          _id: (0xc4a7000 + index).toString(16).padStart(32, '0') as never,
          uid: user,
          nm: `Old chat ${index}`,
          ts: at,
          lastActivity: at,
          endTs: at,
          dur: 0,
          adminAssisted: false,
          helpRequested: false,
          totalTokens: 0,
          msgCount: 0,
        };
      }),
    );
    const page = await openChat(user);
    const search = page.getByLabel('Search conversations');
    await expect(search.getAttribute('placeholder')).resolves.toBe('Filter recent chats by name');
    await page
      .locator('#conv-limit', { hasText: 'Only your 100 most recent conversations are listed and searched.' })
      .waitFor();
    await search.fill('Old chat 1');
    await page.locator('.conv-item', { hasText: 'Old chat 100' }).waitFor();
    // The oldest one is not among the rows the server returned, so the page cannot find it.
    await search.fill('Old chat 0');
    await page.getByText('No conversation matches.').waitFor();
  });

  it('a new chat welcomes; an ended one can be continued in a new session that refers to it', async () => {
    const user = 'continue-user';
    const page = await openChat(user);
    await expect(page.locator('#welcome').isVisible()).resolves.toBe(true);
    await sendMessage(page, 'Order 4711 is late.');
    await lastAi(page).filter({ hasText: 'w5' }).waitFor();
    await waitForReplyDone(page);
    await expect(page.locator('#welcome').isVisible()).resolves.toBe(false);
    const oldId = (await page.evaluate(() => window.__chatbox.sessionId)) as string;
    await rest(t.baseUrl, `/sessions/${oldId}/end`, userToken(user), { method: 'POST' });
    await page.getByRole('link', { name: 'Continue this conversation' }).click();
    await waitConnected(page);
    await page.locator('.continued-note').waitFor();
    await sendMessage(page, 'Any news on it?');
    await lastAi(page).filter({ hasText: 'w5' }).waitFor();
    await waitForReplyDone(page);
    const newId = await page.evaluate(() => window.__chatbox.sessionId);
    expect(newId).not.toBe(oldId);
    const stored = await history(page, user);
    expect(stored[0].metadata?.continued_from).toBe(oldId);
    await page.reload();
    await waitConnected(page);
    await page.locator('.continued-note a', { hasText: 'Order 4711 is late.' }).waitFor();
  });

  it('code blocks have a language label, a copy button and colours; the theme follows the system and the toggle', async () => {
    fake.script({ chunks: CODE_REPLY, delayMs: 10 });
    const page = await openChat('code-user');
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    await sendMessage(page, 'How do I read the order file?');
    await waitForReplyDone(page);
    const block = lastAi(page).locator('.code-block');
    await expect(block.locator('.code-lang').textContent()).resolves.toBe('Python');
    expect(await block.locator('.hljs-keyword').count()).toBeGreaterThan(0);
    await block.getByRole('button', { name: 'Copy Python code' }).click();
    await block.getByText('Copied').waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toContain('def read_order(path):');
    expect(squash(copied)).not.toContain('Copy');

    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const light = await background();
    await page.emulateMedia({ colorScheme: 'dark' });
    const dark = await background();
    expect(dark).not.toBe(light);
    await page.getByRole('button', { name: 'Use the light theme' }).first().click();
    expect(await background()).toBe(light);
    await page.reload();
    await waitConnected(page);
    expect(await background()).toBe(light); // the choice is kept
    await page.getByRole('button', { name: 'Use the dark theme' }).first().click();
    expect(await background()).toBe(dark);
    await page.evaluate(() =>
      (window as unknown as { localStorage: { clear(): void } }).localStorage.clear(),
    );
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('screenshots: chat, sessions and shared view at 1280 and 375 px, light and dark', async () => {
    fake.script({ chunks: CODE_REPLY, delayMs: 5 });
    const user = 'screenshot-user';
    const page = await openChat(user);
    await screenshots(page, 'chat-welcome');
    await sendMessage(page, 'How do I read the order file?');
    await waitForReplyDone(page);
    await screenshots(page, 'chat');
    const id = await page.evaluate(() => window.__chatbox.sessionId);
    const share = (await (
      await rest(t.baseUrl, `/sessions/${id}/share`, userToken(user), { method: 'POST' })
    ).json()) as { share_url: string };
    await page.goto(`${t.baseUrl}/`);
    await page.locator('.session-card').first().waitFor();
    await screenshots(page, 'sessions');
    const viewer = await pages.newPage();
    await viewer.goto(share.share_url);
    await viewer.locator('.msg-ai .code-block').waitFor();
    await screenshots(viewer, 'shared');
    expect(pages.pageErrors()).toEqual([]);
  });
});
