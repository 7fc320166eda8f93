import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';

/** Debian's Chromium, driven by playwright-core (no browser download). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

/** `count` words `tag0 tag1 …`, each with a trailing space: one fake stream chunk each. */
export const words = (count: number, tag = 'w') =>
  Array.from({ length: count }, (_, index) => `${tag}${index} `);

/** Collapses whitespace, for comparing rendered text with stored text. */
export const squash = (text: string | null | undefined) => (text ?? '').replace(/\s+/g, ' ').trim();

/**
 * Pages in their own browser contexts (one user each), closed together by `closeAll()`.
 * Dialogs are dismissed and recorded in `dialogs`, page errors as `pageerror: …`.
 */
export class PageTracker {
  readonly dialogs: string[] = [];
  private readonly contexts: BrowserContext[] = [];

  constructor(private readonly browser: () => Browser) {}

  async newPage(width = 1280): Promise<Page> {
    const context = await this.browser().newContext({ viewport: { width, height: 800 } });
    this.contexts.push(context);
    const page = await context.newPage();
    page.on('dialog', (dialog) => {
      this.dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on('pageerror', (error) => this.dialogs.push(`pageerror: ${error.message}`));
    return page;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.contexts.splice(0).map((context) => context.close().catch(() => undefined)));
  }

  pageErrors(): string[] {
    return this.dialogs.filter((text) => text.startsWith('pageerror'));
  }
}

/** REST call to the app under test with a Bearer token; `baseUrl` includes the prefix. */
export function rest(
  baseUrl: string,
  path: string,
  token: string,
  init: RequestInit = {},
): Promise<Response> {
  return fetch(`${baseUrl}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${token}`, ...(init.headers ?? {}) },
  });
}

/** The body of the newest AI bubble. */
export const lastAi = (page: Page) => page.locator('.msg-ai .bubble-body').last();

export async function waitConnected(page: Page): Promise<void> {
  await page.locator('#conn[data-state="connected"]').waitFor();
}

export async function sendMessage(page: Page, text: string): Promise<void> {
  await page.locator('#input').fill(text);
  await page.locator('#input').press('Enter');
}

/** The reply ended: Stop is hidden and Send is back. */
export async function waitForReplyDone(page: Page): Promise<void> {
  await page.locator('#stop-btn').waitFor({ state: 'hidden' });
  await page.locator('#send-btn').waitFor({ state: 'visible' });
}

/** Where the browser tests write their screenshots (looked at by people, not compared). */
export const SCREENSHOTS_DIR = resolve(__dirname, '../../test-artifacts/screenshots');

/**
 * Screenshots of `page` at 1280 and 375 px, in the light and the dark theme (the page follows the
 * emulated `prefers-color-scheme`): `<name>-<width>-<theme>.png`.
 */
export async function screenshots(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    for (const width of [1280, 375]) {
      await page.setViewportSize({ width, height: width > 600 ? 800 : 740 });
      await page.waitForTimeout(150);
      await page.screenshot({ path: resolve(SCREENSHOTS_DIR, `${name}-${width}-${colorScheme}.png`) });
    }
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1280, height: 800 });
}
