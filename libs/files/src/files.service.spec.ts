import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { loadConfig } from '@chatbox/common';
import type { ConversationStore } from '@chatbox/storage';
import { FileStorageDriver } from './drivers/file-storage-driver';
import { FilesService, RemoteFileError } from './files.service';
import { FileUrlSigner } from './file-url-signer';
import type { UploadRecord, UploadsRepository } from './uploads.repository';

const PNG = Buffer.concat([
  Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex'),
  Buffer.from('a tiny picture'),
]);
const LIMIT = 1024;

class MemoryDriver extends FileStorageDriver {
  readonly name = 'memory';
  readonly objects = new Map<string, Buffer>();
  async put(key: string, body: Readable): Promise<void> {
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(chunk as Buffer);
    this.objects.set(key, Buffer.concat(parts));
  }
  open(key: string): Promise<Readable> {
    return Promise.resolve(Readable.from([this.objects.get(key) ?? Buffer.alloc(0)]));
  }
  remove(key: string): Promise<void> {
    this.objects.delete(key);
    return Promise.resolve();
  }
}

describe('FilesService: files the service obtains itself', () => {
  const config = loadConfig({
    NODE_ENV: 'test',
    JWT_SECRET: 'files-spec-key-0123456789abcdef',
    UPLOAD_MAX_SIZE: String(LIMIT),
  });
  let driver: MemoryDriver;
  let records: UploadRecord[];
  let service: FilesService;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      switch (req.url?.split('?')[0]) {
        case '/pic.png':
          return void res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
        case '/big.png':
          // No Content-Length: the limit must hold while streaming.
          res.writeHead(200, { 'content-type': 'image/png' });
          res.write(PNG);
          return void res.end(Buffer.alloc(LIMIT));
        case '/page.html':
          return void res.writeHead(200, { 'content-type': 'image/png' }).end('<html><script>x</script>');
        case '/slow.png':
          res.writeHead(200, { 'content-type': 'image/png' });
          return void res.write(PNG.subarray(0, 8));
        default:
          return void res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  beforeEach(() => {
    driver = new MemoryDriver();
    records = [];
    const uploads = { insert: (record: UploadRecord) => Promise.resolve(void records.push(record)) };
    service = new FilesService(
      uploads as unknown as UploadsRepository,
      driver,
      {} as ConversationStore,
      new FileUrlSigner(config),
      config,
    );
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('storeGenerated records the bytes as an upload of the user with the given type', async () => {
    const record = await service.storeGenerated('u1', Buffer.from('ID3 audio'), 'reply.mp3', 'audio/mpeg');
    expect(record).toMatchObject({ userId: 'u1', filename: 'reply.mp3', mime: 'audio/mpeg', size: 9 });
    expect(record.id).toMatch(/^[0-9a-f]{32}$/);
    expect(records).toEqual([record]);
    expect(driver.objects.get(record.key)?.toString()).toBe('ID3 audio');
  });

  it('importFromUrl downloads, sniffs and stores a file', async () => {
    const record = await service.importFromUrl('u2', `${base}/pic.png?sign=abc`);
    expect(record).toMatchObject({ userId: 'u2', filename: 'pic.png', mime: 'image/png', size: PNG.length });
    expect(driver.objects.get(record.key)?.equals(PNG)).toBe(true);
  });

  it.each([
    ['a scheme other than http(s)', 'file:///etc/passwd', /scheme/],
    ['an HTTP error', '/missing.png', /HTTP 404/],
    ['a body over UPLOAD_MAX_SIZE', '/big.png', /over the limit/],
    ['content outside the allow-list', '/page.html', /not allowed/],
  ])('importFromUrl refuses %s and keeps nothing', async (_label, path, message) => {
    const url = path.startsWith('/') ? `${base}${path}` : path;
    await expect(service.importFromUrl('u3', url)).rejects.toThrow(message);
    await expect(service.importFromUrl('u3', url)).rejects.toBeInstanceOf(RemoteFileError);
    expect(records).toHaveLength(0);
    expect(driver.objects.size).toBe(0);
  });

  it('importFromUrl gives up after its timeout', async () => {
    const started = Date.now();
    await expect(service.importFromUrl('u4', `${base}/slow.png`, { timeoutMs: 200 })).rejects.toBeInstanceOf(
      RemoteFileError,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(records).toHaveLength(0);
  });
});
