import { crc32, deflateSync } from 'node:zlib';
import { Browser, Page, WebSocket as PageSocket } from 'playwright-core';
import { FakeOpenAi, startFakeOpenAi } from '../support/fake-llm';
import { startTestApp, TestApp } from '../support/app';
import {
  lastAi,
  launchChromium,
  PageTracker,
  rest,
  sendMessage,
  squash,
  waitConnected,
  waitForReplyDone,
  words,
} from '../support/browser';
import { userToken } from '../support/tokens';

// Browser-side globals used inside page.evaluate callbacks (this project compiles without the DOM lib).
interface UploadBox {
  hidden: boolean;
}
interface MediaNode {
  src: string;
  complete: boolean;
  naturalWidth: number;
  readyState: number;
  duration: number;
}
declare const document: { getElementById(id: string): UploadBox };
declare const window: {
  __uploadStates: boolean[];
  __chatbox: { sessionId: string | null };
};
declare class MutationObserver {
  constructor(callback: () => void);
  observe(target: unknown, options: object): void;
}

interface StoredMessage {
  id: string;
  type: string;
  sender: string;
  content: string;
  file_id?: string;
  file_url?: string;
  metadata?: Record<string, string>;
}

/** A real, decodable PNG (RGB, 8 bit) of one colour. */
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
  header[8] = 8; // bit depth
  header[9] = 2; // colour type RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: width }, () => rgb).flat())]);
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A playable WAV: 16-bit mono PCM at 8 kHz, a 440 Hz tone of `samples` samples. */
function toneWav(samples: number, rate = 8000): Buffer {
  const data = Buffer.alloc(samples * 2);
  for (let index = 0; index < samples; index++)
    data.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * index) / rate)), index * 2);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28); // byte rate
  header.writeUInt16LE(2, 32); // block align
  header.writeUInt16LE(16, 34); // bits per sample
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

const PROVIDERS = {
  LLM_PROVIDER_1_ID: 'fake-a',
  LLM_PROVIDER_1_NAME: 'Fake Alpha',
  LLM_PROVIDER_1_TYPE: 'openai',
  LLM_PROVIDER_1_MODEL: 'model-a',
  LLM_PROVIDER_1_API_KEY: 'test-key',
  LLM_PROVIDER_2_ID: 'fake-b',
  LLM_PROVIDER_2_NAME: 'Fake Beta',
  LLM_PROVIDER_2_TYPE: 'openai',
  LLM_PROVIDER_2_MODEL: 'model-b',
  LLM_PROVIDER_2_API_KEY: 'test-key',
};

describe('chat controls in Chromium (stop, model selector, uploads, audio)', () => {
  let t: TestApp;
  let fakeA: FakeOpenAi;
  let fakeB: FakeOpenAi;
  let browser: Browser;
  const pages = new PageTracker(() => browser);

  beforeAll(async () => {
    [fakeA, fakeB] = await Promise.all([startFakeOpenAi(), startFakeOpenAi()]);
    t = await startTestApp({
      ...PROVIDERS,
      LLM_PROVIDER_1_ENDPOINT: fakeA.url,
      LLM_PROVIDER_2_ENDPOINT: fakeB.url,
    });
    browser = await launchChromium();
  });
  beforeEach(() => {
    fakeA.reset().script({ chunks: words(4, 'a'), delayMs: 10 });
    fakeB.reset().script({ chunks: words(4, 'b'), delayMs: 10 });
  });
  afterEach(() => pages.closeAll());
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await Promise.all([fakeA?.close(), fakeB?.close()]);
  });

  /** A fresh chat page of `user`, connected. */
  async function openChat(user: string, query = 'new=1', before?: (page: Page) => void): Promise<Page> {
    const page = await pages.newPage();
    before?.(page);
    await page.goto(`${t.baseUrl}/chat?${query}&token=${userToken(user)}`);
    await waitConnected(page);
    return page;
  }

  async function sessionOf(page: Page): Promise<string> {
    // A new chat learns its id from the server's first frame about it, which may follow the local echo.
    await page.waitForFunction(() => window.__chatbox.sessionId !== null);
    const id = await page.evaluate(() => window.__chatbox.sessionId);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    return id as string;
  }

  async function storedMessages(sessionId: string, user: string): Promise<StoredMessage[]> {
    const response = await rest(t.baseUrl, `/sessions/${sessionId}`, userToken(user));
    expect(response.status).toBe(200);
    return ((await response.json()) as { messages: StoredMessage[] }).messages;
  }

  /** Records every `hidden` state the upload progress box goes through. */
  async function watchUploadBox(page: Page): Promise<void> {
    await page.evaluate(() => {
      const box = document.getElementById('upload-progress');
      const states: boolean[] = [box.hidden];
      window.__uploadStates = states;
      new MutationObserver(() => {
        if (states[states.length - 1] !== box.hidden) states.push(box.hidden);
      }).observe(box, { attributes: true, attributeFilter: ['hidden'] });
    });
  }

  /** Picks a file through the paperclip button's file chooser. */
  async function attach(page: Page, file: { name: string; mimeType: string; buffer: Buffer }): Promise<void> {
    const chooser = page.waitForEvent('filechooser');
    await page.getByRole('button', { name: 'Attach a file' }).click();
    await (await chooser).setFiles(file);
  }

  it('Stop ends a slow stream within a second and leaves exactly the stored, stopped reply', async () => {
    fakeA.script({ chunks: words(80, 's'), delayMs: 100 });
    const user = 'stop-user';
    const page = await openChat(user);
    const stop = page.getByRole('button', { name: 'Stop' });
    await expect(stop.isVisible()).resolves.toBe(false);

    await sendMessage(page, 'Count slowly to eighty');
    await lastAi(page).filter({ hasText: 's3' }).waitFor();
    await expect(stop.isVisible()).resolves.toBe(true);
    await expect(page.locator('#send-btn').isVisible()).resolves.toBe(false);

    const closed = fakeA.waitForClientClose(1_000);
    const clickedAt = Date.now();
    await stop.click();
    const close = await closed;
    expect(close.path).toMatch(/\/chat\/completions$/);
    expect(close.at - clickedAt).toBeLessThan(1_000);

    await waitForReplyDone(page);
    await page.locator('.msg-ai.msg-stopped').waitFor();
    const sessionId = await sessionOf(page);
    const replies = (await storedMessages(sessionId, user)).filter((message) => message.sender === 'ai');
    expect(replies).toHaveLength(1);
    expect(replies[0].metadata?.status).toBe('stopped');
    expect(replies[0].content).toMatch(/^s0 s1 s2 s3 /);
    expect(squash(replies[0].content)).not.toContain('s79');
    // Rendering is batched per animation frame: wait for the last batch, then compare exactly.
    await page.waitForFunction(
      (expected) =>
        (document as unknown as { querySelector(s: string): { textContent: string } | null })
          .querySelector('.msg-ai .bubble-body')
          ?.textContent.replace(/\s+/g, ' ')
          .trim() === expected,
      squash(replies[0].content),
    );
    expect(squash(await lastAi(page).textContent())).toBe(squash(replies[0].content));
    // Nothing streams in after the stop: a session's replies come one after another, so anything
    // late of the stopped one would reach the page before the next reply.
    fakeA.script({ chunks: ['Next', ' reply.'] });
    await sendMessage(page, 'And now?');
    await lastAi(page).filter({ hasText: 'Next reply.' }).waitFor();
    await waitForReplyDone(page);
    const stopped = page.locator('.msg-ai.msg-stopped .bubble-body');
    expect(squash(await stopped.textContent())).toBe(squash(replies[0].content));
    await expect(page.locator('#typing').isVisible()).resolves.toBe(false);
    expect(pages.pageErrors()).toEqual([]);
  });

  it('the model selector switches the next reply to the second provider', async () => {
    const user = 'model-user';
    const doneModels: string[] = [];
    const page = await openChat(user, 'new=1', (target) =>
      target.on('websocket', (socket: PageSocket) =>
        socket.on('framereceived', ({ payload }) => {
          const frame = JSON.parse(String(payload)) as {
            type: string;
            model_id?: string;
            metadata?: Record<string, string>;
          };
          if (frame.type === 'ai_response' && frame.metadata?.done === 'true')
            doneModels.push(frame.model_id ?? '');
        }),
      ),
    );

    const select = page.getByLabel('Model');
    await expect(page.locator('#model-wrap').isVisible()).resolves.toBe(true);
    await expect(select.locator('option').allTextContents()).resolves.toEqual(['Fake Alpha', 'Fake Beta']);
    await expect(select.inputValue()).resolves.toBe('fake-a');

    await sendMessage(page, 'First question');
    await lastAi(page).filter({ hasText: 'a3' }).waitFor();
    await waitForReplyDone(page);
    expect(fakeA.requestsTo('/chat/completions')).toHaveLength(1);
    expect(fakeA.requestsTo('/chat/completions')[0].body.model).toBe('model-a');

    await select.selectOption('fake-b');
    await page.locator('.system-note', { hasText: 'Model changed to Fake Beta' }).waitFor();
    await sendMessage(page, 'Second question');
    await page.locator('.msg-ai .bubble-body', { hasText: 'b3' }).waitFor();
    await waitForReplyDone(page);

    expect(fakeA.requestsTo('/chat/completions')).toHaveLength(1);
    const toB = fakeB.requestsTo('/chat/completions');
    expect(toB).toHaveLength(1);
    expect(toB[0].body.model).toBe('model-b');
    expect(doneModels).toEqual(['fake-a', 'fake-b']);
    const replies = (await storedMessages(await sessionOf(page), user)).filter(
      (message) => message.sender === 'ai',
    );
    expect(replies.map((message) => message.metadata?.model_id)).toEqual(['fake-a', 'fake-b']);

    // After a reload the selector shows the session's model.
    await page.reload();
    await waitConnected(page);
    // "Connected" shows on socket open; the model list arrives with the greeting frame just after.
    await page.getByLabel('Model').locator('option').first().waitFor({ state: 'attached' });
    await expect(page.getByLabel('Model').inputValue()).resolves.toBe('fake-b');
  });

  it('with a single provider the model selector stays hidden', async () => {
    const single = await startTestApp({
      LLM_PROVIDER_1_ID: 'only',
      LLM_PROVIDER_1_NAME: 'Only One',
      LLM_PROVIDER_1_TYPE: 'openai',
      LLM_PROVIDER_1_ENDPOINT: fakeA.url,
      LLM_PROVIDER_1_MODEL: 'model-a',
      LLM_PROVIDER_1_API_KEY: 'test-key',
    });
    try {
      const page = await pages.newPage();
      await page.goto(`${single.baseUrl}/chat?new=1&token=${userToken('single-user')}`);
      await waitConnected(page);
      await sendMessage(page, 'Hello');
      await lastAi(page).filter({ hasText: 'a3' }).waitFor();
      await waitForReplyDone(page);
      await expect(page.locator('#model-wrap').isVisible()).resolves.toBe(false);
      await expect(page.locator('#model-select option').count()).resolves.toBe(1);
    } finally {
      await single.close();
    }
  });

  it('an attached PNG uploads with progress, shows from a signed link, and reaches the other tab', async () => {
    const user = 'image-user';
    const page = await openChat(user);
    await sendMessage(page, 'I will send a picture');
    await lastAi(page).filter({ hasText: 'a3' }).waitFor();
    await waitForReplyDone(page);
    const sessionId = await sessionOf(page);
    // A second tab of the same user, bound to the same session.
    const other = await openChat(user, `session_id=${sessionId}`);
    await other.locator('.msg-user', { hasText: 'I will send a picture' }).waitFor();

    const png = solidPng(8, 6, [200, 30, 30]);
    await watchUploadBox(page);
    await attach(page, { name: 'red square.png', mimeType: 'image/png', buffer: png });
    const image = page.locator('.msg-user .attachment img');
    await image.waitFor();
    await page.locator('#upload-progress').waitFor({ state: 'hidden' });
    // The progress box was shown during the upload and hidden again afterwards.
    await expect(page.evaluate(() => window.__uploadStates)).resolves.toEqual([true, false, true]);
    await expect(page.locator('#upload-label').textContent()).resolves.toContain('red square.png');

    const imageIn = async (target: Page) => {
      const img = target.locator('.attachment img');
      await img.waitFor();
      await target.waitForFunction(
        (node) => (node as unknown as MediaNode).complete && (node as unknown as MediaNode).naturalWidth > 0,
        await img.elementHandle(),
      );
      const info = await img.evaluate((node) => ({
        src: (node as unknown as MediaNode).src,
        width: (node as unknown as MediaNode).naturalWidth,
      }));
      expect(info.width).toBe(8);
      const url = new URL(info.src);
      expect(url.origin + url.pathname).toMatch(
        new RegExp(`^${t.baseUrl.replace(/[.]/g, '\\.')}/files/[A-Za-z0-9_-]+$`),
      );
      expect(url.searchParams.get('signature')).toBeTruthy();
      expect(Number(url.searchParams.get('expires'))).toBeGreaterThan(Date.now() / 1000);
      const download = await fetch(info.src); // no token: the signature is the capability
      expect(download.status).toBe(200);
      expect(download.headers.get('content-type')).toBe('image/png');
      expect(Buffer.from(await download.arrayBuffer()).equals(png)).toBe(true);
      return url.pathname;
    };
    const ownPath = await imageIn(page);
    // The other tab got it live over its socket, with its own signed link to the same file.
    expect(await imageIn(other)).toBe(ownPath);

    const stored = (await storedMessages(sessionId, user)).filter(
      (message) => message.type === 'file_upload',
    );
    expect(stored).toHaveLength(1);
    expect(stored[0].metadata?.mime_type).toBe('image/png');
    expect(ownPath).toBe(`${new URL(t.baseUrl).pathname}/files/${stored[0].file_id}`);

    // And it is in the history of a fresh load.
    await other.reload();
    await waitConnected(other);
    expect(await imageIn(other)).toBe(ownPath);
    await expect(other.locator('.attachment img').getAttribute('alt')).resolves.toBe('red square.png');
    expect(pages.pageErrors()).toEqual([]);
  });

  it('an uploaded WAV file becomes an audio player whose source plays as audio/wav', async () => {
    const user = 'audio-user';
    const page = await openChat(user);
    const wav = toneWav(800);
    await watchUploadBox(page);
    await attach(page, { name: 'tone.wav', mimeType: 'audio/wav', buffer: wav });
    const player = page.locator('.msg-user .attachment audio');
    await player.waitFor();
    await page.locator('#upload-progress').waitFor({ state: 'hidden' });
    await expect(page.evaluate(() => window.__uploadStates)).resolves.toEqual([true, false, true]);
    await expect(player.getAttribute('controls')).resolves.not.toBeNull();
    await expect(player.getAttribute('aria-label')).resolves.toBe('tone.wav');

    // The browser loads the metadata from the signed link (CSP media-src allows it).
    await page.waitForFunction(
      (node) => (node as unknown as MediaNode).readyState >= 1,
      await player.elementHandle(),
    );
    const media = await player.evaluate((node) => ({
      src: (node as unknown as MediaNode).src,
      duration: (node as unknown as MediaNode).duration,
    }));
    expect(media.duration).toBeCloseTo(0.1, 2);
    const whole = await fetch(media.src);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('audio/wav');
    expect(Buffer.from(await whole.arrayBuffer()).equals(wav)).toBe(true);
    const part = await fetch(media.src, { headers: { Range: 'bytes=0-11' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-type')).toBe('audio/wav');
    expect(Buffer.from(await part.arrayBuffer()).toString('ascii', 0, 4)).toBe('RIFF');

    // Stored as a file message of the new session; the history shows the player again.
    const sessionId = await sessionOf(page);
    const stored = (await storedMessages(sessionId, user)).filter(
      (message) => message.type === 'file_upload',
    );
    expect(stored).toHaveLength(1);
    expect(stored[0].metadata?.mime_type).toBe('audio/wav');
    await page.reload();
    await waitConnected(page);
    await page.locator('.attachment audio').waitFor();
    expect(pages.pageErrors()).toEqual([]);
  });
});
