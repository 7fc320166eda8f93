import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Environment } from '@chatbox/common';
import { UploadCleanupService } from '@chatbox/files';
import { startTestApp, TestApp } from './app';
import { adminToken, userToken } from './tokens';
import { until } from './until';
import { TestClient } from './ws-client';

/** Short enough to watch a link expire inside a test. */
export const TEST_FILE_URL_TTL_MS = 2_000;
export const TEST_UPLOAD_MAX_SIZE = 100 * 1024;
export const TEST_UPLOAD_RATE_LIMIT = 6;
export const TEST_UPLOAD_QUOTA = 250 * 1024;

export const PNG = Buffer.concat([
  Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex'),
  Buffer.from('a tiny picture, good enough for sniffing'),
]);

/** A WAV file (RIFF/WAVE header) whose data bytes are a known pattern, for range checks. */
export function wavFile(dataBytes: number): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVE', 8);
  header.write('fmt ', 12);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(8000, 28);
  header.writeUInt16LE(1, 32);
  header.writeUInt16LE(8, 34);
  header.write('data', 36);
  header.writeUInt32LE(dataBytes, 40);
  const data = Buffer.alloc(dataBytes);
  for (let index = 0; index < dataBytes; index++) data[index] = index % 251;
  return Buffer.concat([header, data]);
}

export interface UploadAnswer {
  status: number;
  body: any;
}

export async function uploadFile(
  t: TestApp,
  token: string | undefined,
  file: { bytes: Buffer; name: string; type?: string; field?: string },
  path = '/upload',
): Promise<UploadAnswer> {
  const form = new FormData();
  form.append('note', 'extra text fields are ignored');
  form.append(
    file.field ?? 'file',
    new Blob([new Uint8Array(file.bytes)], { type: file.type ?? '' }),
    file.name,
  );
  const url = path.startsWith('/api/') ? `${new URL(t.baseUrl).origin}${path}` : `${t.baseUrl}${path}`;
  const response = await fetch(url, {
    method: 'POST',
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    body: form,
  });
  return { status: response.status, body: await response.json().catch(() => undefined) };
}

export function absolute(t: TestApp, fileUrl: string): string {
  return `${new URL(t.baseUrl).origin}${fileUrl}`;
}

export interface FilesSuiteOptions {
  /** Extra environment (the S3 variant points the app at its server). */
  env: () => Environment;
  /** What the driver holds right now: file names on disk or keys in the bucket. */
  storedObjects: (t: TestApp) => Promise<string[]>;
}

/** The files behaviour, run once per storage driver. */
export function filesSuite(label: string, options: FilesSuiteOptions): void {
  describe(`files (${label} driver)`, () => {
    let t: TestApp;
    const clients: TestClient[] = [];

    beforeAll(async () => {
      t = await startTestApp({
        FILE_URL_TTL: `${TEST_FILE_URL_TTL_MS / 1000}s`,
        UPLOAD_MAX_SIZE: `${TEST_UPLOAD_MAX_SIZE / 1024}KB`,
        UPLOAD_RATE_LIMIT: String(TEST_UPLOAD_RATE_LIMIT),
        UPLOAD_QUOTA: `${TEST_UPLOAD_QUOTA / 1024}KB`,
        ...options.env(),
      });
    });
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((client) => client.close()));
    });
    afterAll(async () => t?.close());

    async function connect(userId: string, sessionId?: string): Promise<TestClient> {
      const client = await TestClient.connect(t.wsUrl, { token: userToken(userId), sessionId });
      clients.push(client);
      await client.waitForType('connection_status');
      return client;
    }

    async function startSession(client: TestClient): Promise<string> {
      client.send({ type: 'user_message', content: 'Here comes a file.' });
      const { done } = await client.waitForReply();
      return done.session_id!;
    }

    it('uploads, shares over the socket with another tab, serves the same bytes, expires and re-signs', async () => {
      const uploaded = await uploadFile(t, userToken('u-tabs'), {
        bytes: PNG,
        name: 'cat.png',
        type: 'image/png',
      });
      expect(uploaded.status).toBe(200);
      expect(uploaded.body).toEqual({
        file_id: expect.stringMatching(/^[0-9a-f]{32}$/),
        file_url: expect.stringMatching(/^\/chatbox\/files\/[0-9a-f]{32}\?expires=\d+&signature=[\w-]+$/),
        filename: 'cat.png',
        size: PNG.length,
        mime_type: 'image/png',
      });
      const fileId = uploaded.body.file_id as string;
      const record = await t.db.collection('uploads').findOne({ _id: fileId as never });
      expect(Object.keys(record!).sort()).toEqual(['_id', 'filename', 'key', 'mime', 'size', 'ts', 'uid']);
      expect(record).toMatchObject({
        uid: 'u-tabs',
        filename: 'cat.png',
        mime: 'image/png',
        size: PNG.length,
      });

      const tab1 = await connect('u-tabs');
      const sessionId = await startSession(tab1);
      const tab2 = await connect('u-tabs', sessionId);
      tab1.send({ type: 'file_upload', session_id: sessionId, file_id: fileId, content: 'my cat' });
      const relayed = await tab2.waitFor((frame) => frame.type === 'file_upload');
      expect(relayed).toMatchObject({
        session_id: sessionId,
        sender: 'user',
        content: 'my cat',
        file_id: fileId,
        metadata: { file_name: 'cat.png', mime_type: 'image/png' },
      });
      const download = await fetch(absolute(t, relayed.file_url as string));
      expect(download.status).toBe(200);
      expect(Buffer.from(await download.arrayBuffer()).equals(PNG)).toBe(true);
      expect(download.headers.get('content-type')).toBe('image/png');
      expect(download.headers.get('content-disposition')).toBe(
        `inline; filename="cat.png"; filename*=UTF-8''cat.png`,
      );
      expect(download.headers.get('x-content-type-options')).toBe('nosniff');
      expect(download.headers.get('accept-ranges')).toBe('bytes');

      // Stored with the canonical unsigned path, never an expiring URL.
      const stored = await t.stored(sessionId);
      const message = (stored!.msgs as any[]).find((entry) => entry.fileId === fileId);
      expect(message).toMatchObject({
        type: 'file_upload',
        fileUrl: `/chatbox/files/${fileId}`,
        sender: 'user',
      });

      const expires = Number(new URL(absolute(t, relayed.file_url as string)).searchParams.get('expires'));
      await until(() => Date.now() >= expires * 1000, TEST_FILE_URL_TTL_MS + 2_000);
      const expired = await fetch(absolute(t, relayed.file_url as string));
      expect(expired.status).toBe(403);
      expect(await expired.json()).toMatchObject({ code: 'FORBIDDEN' });

      const history = await fetch(`${t.baseUrl}/sessions/${sessionId}`, {
        headers: { Authorization: `Bearer ${userToken('u-tabs')}` },
      });
      const view = ((await history.json()) as any).messages.find((entry: any) => entry.file_id === fileId);
      expect(view.file_url).not.toBe(relayed.file_url);
      const fresh = await fetch(absolute(t, view.file_url));
      expect(fresh.status).toBe(200);
      expect(Buffer.from(await fresh.arrayBuffer()).equals(PNG)).toBe(true);
      // The sender's own socket never got its frame echoed.
      expect(tab1.ofType('file_upload')).toHaveLength(0);
    });

    it('lets the owner, admins and share-link viewers read with a bearer token, nobody else', async () => {
      const { body } = await uploadFile(t, userToken('u-owner'), { bytes: PNG, name: 'shared.png' });
      const path = `${t.baseUrl}/files/${body.file_id}`;
      const as = (token?: string, query = '') =>
        fetch(`${path}${query}`, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
      expect((await as(userToken('u-owner'))).status).toBe(200);
      expect((await as(adminToken('a-1'))).status).toBe(200);
      expect((await as(userToken('u-stranger'))).status).toBe(404);
      expect((await as()).status).toBe(401);

      const client = await connect('u-owner');
      const sessionId = await startSession(client);
      client.send({ type: 'file_upload', session_id: sessionId, file_id: body.file_id });
      const share = await (async () => {
        await until(async () =>
          ((await t.stored(sessionId))?.msgs as any[]).some((entry) => entry.fileId === body.file_id),
        );
        const response = await fetch(`${t.baseUrl}/sessions/${sessionId}/share`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${userToken('u-owner')}` },
        });
        return (await response.json()) as { share_token: string };
      })();
      expect((await as(undefined, `?share_token=${share.share_token}`)).status).toBe(200);
      expect((await as(undefined, '?share_token=not-a-token')).status).toBe(404);
      const shared = (await (await fetch(`${t.baseUrl}/shared/${share.share_token}`)).json()) as any;
      const sharedView = shared.messages.find((entry: any) => entry.file_id === body.file_id);
      expect(sharedView.file_url).toMatch(/\?expires=\d+&share_token=[\w-]+&signature=[\w-]+$/);
      expect((await fetch(absolute(t, sharedView.file_url))).status).toBe(200);
      // The share-scoped signature is no general link: without its share token it is refused.
      const withoutToken = new URL(absolute(t, sharedView.file_url));
      withoutToken.searchParams.delete('share_token');
      expect((await fetch(withoutToken)).status).toBe(403);

      // Revoking the share ends the shared links at once, not at their expiry.
      const revoked = await fetch(`${t.baseUrl}/sessions/${sessionId}/share`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${userToken('u-owner')}` },
      });
      expect(revoked.status).toBe(204);
      expect((await fetch(absolute(t, sharedView.file_url))).status).toBe(403);
      expect((await as(undefined, `?share_token=${share.share_token}`)).status).toBe(404);
      // The owner's own links are unaffected.
      expect((await as(userToken('u-owner'))).status).toBe(200);
    });

    it('keeps UTF-8 file names (decoded as UTF-8, not latin1)', async () => {
      const { status, body } = await uploadFile(t, userToken('u-utf8'), { bytes: PNG, name: 'été-日本.png' });
      expect(status).toBe(200);
      expect(body.filename).toBe('été-日本.png');
      const download = await fetch(absolute(t, body.file_url));
      expect(download.headers.get('content-disposition')).toContain(
        `filename*=UTF-8''${encodeURIComponent('été-日本.png')}`,
      );
    });

    it('refuses forged signatures with 403', async () => {
      const { body } = await uploadFile(t, userToken('u-forge'), { bytes: PNG, name: 'a.png' });
      const url = new URL(absolute(t, body.file_url));
      const signature = url.searchParams.get('signature')!;
      url.searchParams.set('signature', `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`);
      expect((await fetch(url)).status).toBe(403);
      const moved = new URL(absolute(t, body.file_url));
      moved.searchParams.set('expires', String(Number(moved.searchParams.get('expires')) + 3600));
      expect((await fetch(moved)).status).toBe(403);
      expect((await fetch(`${t.baseUrl}/files/${body.file_id}?expires=1&signature=x`)).status).toBe(403);
    });

    it('serves byte ranges of audio (206, Content-Range) and 416 when unsatisfiable', async () => {
      const wav = wavFile(10_000);
      const { status, body } = await uploadFile(t, userToken('u-audio'), { bytes: wav, name: 'note.wav' });
      expect(status).toBe(200);
      expect(body.mime_type).toBe('audio/wav');
      const url = absolute(t, body.file_url);
      const middle = await fetch(url, { headers: { Range: 'bytes=5000-5999' } });
      expect(middle.status).toBe(206);
      expect(middle.headers.get('content-range')).toBe(`bytes 5000-5999/${wav.length}`);
      expect(middle.headers.get('content-length')).toBe('1000');
      expect(Buffer.from(await middle.arrayBuffer()).equals(wav.subarray(5000, 6000))).toBe(true);
      const tail = await fetch(url, { headers: { Range: 'bytes=-10' } });
      expect(Buffer.from(await tail.arrayBuffer()).equals(wav.subarray(wav.length - 10))).toBe(true);
      const beyond = await fetch(url, { headers: { Range: `bytes=${wav.length}-` } });
      expect(beyond.status).toBe(416);
      expect(beyond.headers.get('content-range')).toBe(`bytes */${wav.length}`);
    });

    it('sanitises file names and answers on the /api/upload alias', async () => {
      const before = await options.storedObjects(t);
      const { status, body } = await uploadFile(
        t,
        userToken('u-names'),
        { bytes: PNG, name: '../../etc/passwd' },
        '/api/upload',
      );
      expect(status).toBe(200);
      expect(body.filename).toBe('passwd');
      const after = await options.storedObjects(t);
      expect(after.filter((name) => !before.includes(name))).toEqual([body.file_id]);
      expect(existsSync(join(t.config.storage.dataDir, 'etc'))).toBe(false);
      const download = await fetch(absolute(t, body.file_url));
      expect(download.headers.get('content-disposition')).toContain('filename="passwd"');
    });

    it.each([
      [
        'a PE executable renamed .png',
        Buffer.concat([Buffer.from('MZ'), Buffer.alloc(512)]),
        'cat.png',
        /Windows executable/,
      ],
      [
        'an ELF binary renamed .png',
        Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(512)]),
        'cat.png',
        /ELF/,
      ],
      ['a shell script renamed .txt', Buffer.from('#!/bin/sh\necho owned\n'), 'notes.txt', /script/],
      [
        'an SVG with a script',
        Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'),
        'logo.svg',
        /HTML, SVG or script/,
      ],
      [
        'an HTML page named .txt',
        Buffer.from('<html><body onload="x()">hi</body></html>'),
        'page.txt',
        /HTML/,
      ],
    ])('refuses %s with 415 naming the reason', async (_name, bytes, filename, reason) => {
      const before = await options.storedObjects(t);
      const { status, body } = await uploadFile(t, userToken('u-hostile'), { bytes, name: filename });
      expect(status).toBe(415);
      expect(body).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(reason) });
      expect(await options.storedObjects(t)).toEqual(before);
    });

    it('answers 400 naming the problem for empty files, missing or wrong fields and non-multipart bodies', async () => {
      const token = userToken('u-bad');
      const empty = await uploadFile(t, token, { bytes: Buffer.alloc(0), name: 'empty.txt' });
      expect(empty).toMatchObject({
        status: 400,
        body: { code: 'BAD_REQUEST', message: expect.stringMatching(/empty/) },
      });
      const wrong = await uploadFile(t, token, { bytes: PNG, name: 'a.png', field: 'upload' });
      expect(wrong).toMatchObject({
        status: 400,
        body: { message: expect.stringMatching(/'upload'.*'file'/) },
      });

      const form = new FormData();
      form.append('file', 'just text, not a file part');
      const missing = await fetch(`${t.baseUrl}/upload`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}` },
        body: form,
      });
      expect(missing.status).toBe(400);
      expect(await missing.json()).toMatchObject({
        message: expect.stringMatching(/Missing multipart field 'file'/),
      });

      const json = await fetch(`${t.baseUrl}/upload`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ file: 'x' }),
      });
      expect(json.status).toBe(400);
      expect(await json.json()).toMatchObject({ message: expect.stringMatching(/multipart\/form-data/) });
    });

    it('refuses an upload without a token with 401', async () => {
      const { status, body } = await uploadFile(t, undefined, { bytes: PNG, name: 'a.png' });
      expect(status).toBe(401);
      expect(body.code).toBe('UNAUTHORIZED');
    });

    it('stops a body over UPLOAD_MAX_SIZE with 413 and keeps nothing (no temp file, no object)', async () => {
      const before = await options.storedObjects(t);
      const big = Buffer.concat([PNG, Buffer.alloc(TEST_UPLOAD_MAX_SIZE * 3, 7)]);
      const { status, body } = await uploadFile(t, userToken('u-big'), { bytes: big, name: 'big.png' });
      expect(status).toBe(413);
      expect(body.code).toBe('PAYLOAD_TOO_LARGE');
      // What the refused upload had begun to write is removed after the answer: wait for that.
      const unchanged = async () => JSON.stringify(await options.storedObjects(t)) === JSON.stringify(before);
      await until(unchanged);
      expect(await options.storedObjects(t)).toEqual(before);
      expect(await t.db.collection('uploads').countDocuments({ uid: 'u-big' })).toBe(0);
      // Exactly at the limit is fine; one byte more is not.
      const fits = Buffer.concat([PNG, Buffer.alloc(TEST_UPLOAD_MAX_SIZE - PNG.length, 7)]);
      expect((await uploadFile(t, userToken('u-big'), { bytes: fits, name: 'fits.png' })).status).toBe(200);
      const over = Buffer.concat([fits, Buffer.alloc(1, 7)]);
      const refused = await uploadFile(t, userToken('u-big-2'), { bytes: over, name: 'over.png' });
      expect(refused).toMatchObject({ status: 413, body: { code: 'PAYLOAD_TOO_LARGE' } });
      expect(await t.db.collection('uploads').countDocuments({ uid: 'u-big-2' })).toBe(0);
    });

    it('limits uploads per user (UPLOAD_RATE_LIMIT) with 429 and Retry-After; other users are unaffected', async () => {
      const token = userToken('u-rate');
      for (let index = 0; index < TEST_UPLOAD_RATE_LIMIT; index++)
        expect((await uploadFile(t, token, { bytes: PNG, name: `n${index}.png` })).status).toBe(200);
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(PNG)]), 'one-more.png');
      const refused = await fetch(`${t.baseUrl}/upload`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}` },
        body: form,
      });
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await refused.json()).toMatchObject({
        code: 'TOO_MANY_REQUESTS',
        retry_after_ms: expect.any(Number),
      });
      expect(await t.db.collection('uploads').countDocuments({ uid: 'u-rate' })).toBe(TEST_UPLOAD_RATE_LIMIT);
      expect((await uploadFile(t, userToken('u-rate-other'), { bytes: PNG, name: 'a.png' })).status).toBe(
        200,
      );
    });

    it('keeps each user within UPLOAD_QUOTA: an upload past it is refused with 413 and nothing kept', async () => {
      const token = userToken('u-quota');
      const sized = (bytes: number) => Buffer.concat([PNG, Buffer.alloc(bytes - PNG.length, 3)]);
      const before = await options.storedObjects(t);
      const kept: string[] = [];
      for (const size of [TEST_UPLOAD_MAX_SIZE, TEST_UPLOAD_MAX_SIZE]) {
        const { status, body } = await uploadFile(t, token, { bytes: sized(size), name: 'big.png' });
        expect(status).toBe(200);
        kept.push(body.file_id);
      }
      const left = TEST_UPLOAD_QUOTA - 2 * TEST_UPLOAD_MAX_SIZE;
      const tooMuch = await uploadFile(t, token, { bytes: sized(left + 1), name: 'past.png' });
      expect(tooMuch).toMatchObject({ status: 413, body: { code: 'PAYLOAD_TOO_LARGE' } });
      expect(tooMuch.body.message).toContain(`quota of ${TEST_UPLOAD_QUOTA} bytes`);
      expect((await uploadFile(t, token, { bytes: sized(left), name: 'exact.png' })).status).toBe(200);
      const full = await uploadFile(t, token, { bytes: PNG, name: 'tiny.png' });
      expect(full).toMatchObject({ status: 413, body: { code: 'PAYLOAD_TOO_LARGE' } });
      expect((await options.storedObjects(t)).filter((name) => !before.includes(name))).toHaveLength(3);
      expect(kept).toHaveLength(2);
    });

    it('treats another user’s file id in file_upload exactly like an unknown one', async () => {
      const { body } = await uploadFile(t, userToken('u-victim'), { bytes: PNG, name: 'private.png' });
      const thief = await connect('u-thief');
      thief.send({ type: 'file_upload', file_id: body.file_id });
      const foreign = await thief.waitFor((frame) => frame.type === 'error');
      thief.send({ type: 'file_upload', file_id: 'f'.repeat(32) });
      const unknown = await thief.waitFor((frame) => frame.type === 'error' && frame !== foreign);
      expect(foreign.error).toEqual(unknown.error);
      expect(foreign.error).toMatchObject({ code: 'INVALID_FILE', recoverable: true });
      expect(await t.db.collection('sessions').countDocuments({ uid: 'u-thief' })).toBe(0);
    });

    it('stores a voice note and answers TRANSCRIPTION_UNAVAILABLE without speech-to-text', async () => {
      const { body } = await uploadFile(t, userToken('u-voice'), {
        bytes: wavFile(2_000),
        name: 'voice.wav',
        type: 'audio/wav',
      });
      const client = await connect('u-voice');
      const sessionId = await startSession(client);
      client.send({ type: 'voice_message', session_id: sessionId, file_id: body.file_id });
      const error = await client.waitFor((frame) => frame.type === 'error');
      expect(error.error).toMatchObject({ code: 'TRANSCRIPTION_UNAVAILABLE', recoverable: true });
      const stored = await t.stored(sessionId);
      const voice = (stored!.msgs as any[]).find((entry) => entry.type === 'voice_message');
      expect(voice).toMatchObject({ fileId: body.file_id, fileUrl: `/chatbox/files/${body.file_id}` });
      expect(voice.meta?.transcription).toBeUndefined();
    });

    // Last: the sweep removes every old unreferenced upload, also those of the tests above.
    it('removes uploads no message references once UPLOAD_ORPHAN_TTL has passed; referenced ones stay', async () => {
      const token = userToken('u-sweep');
      const referenced = (await uploadFile(t, token, { bytes: PNG, name: 'sent.png' })).body;
      const orphan = (await uploadFile(t, token, { bytes: PNG, name: 'never-sent.png' })).body;
      const client = await connect('u-sweep');
      const sessionId = await startSession(client);
      client.send({ type: 'file_upload', session_id: sessionId, file_id: referenced.file_id });
      await client.roundTrip();
      const cleanup = t.app.get(UploadCleanupService);

      expect(await cleanup.sweep()).not.toContain(orphan.file_id); // still within its grace period
      const later = new Date(Date.now() + t.config.storage.uploadOrphanGraceMs + 1_000);
      const removed = await cleanup.sweep(later);
      expect(removed).toContain(orphan.file_id);
      expect(removed).not.toContain(referenced.file_id);
      expect(await t.db.collection('uploads').findOne({ _id: orphan.file_id })).toBeNull();
      expect(await options.storedObjects(t)).not.toContain(orphan.file_id);
      expect(
        (
          await fetch(`${t.baseUrl}/files/${orphan.file_id}`, {
            headers: { Authorization: `Bearer ${token}` },
          })
        ).status,
      ).toBe(404);
      const kept = await fetch(`${t.baseUrl}/files/${referenced.file_id}`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(kept.status).toBe(200);
      expect(Buffer.from(await kept.arrayBuffer()).equals(PNG)).toBe(true);
      expect(await cleanup.sweep(later)).toEqual([]);
    });
  });
}

/** Local driver: files (and temp files) under DATA_DIR/uploads. */
export function localObjects(t: TestApp): Promise<string[]> {
  const directory = join(t.config.storage.dataDir, 'uploads');
  return Promise.resolve(existsSync(directory) ? readdirSync(directory).sort() : []);
}
