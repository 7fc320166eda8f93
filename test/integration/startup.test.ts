/**
 * Start-up as a newcomer and an operator meet it (issue 16), on the built service: the banner ends
 * the start-up in one log format; a data directory in use, a busy port and an unreachable MONGO_URI
 * each stop the start with one line and touch nothing of the running service.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { freePort, isProcessAlive } from '@chatbox/storage';
import { builtEntry } from '../support/built-service';
import { databaseTempDir } from '../support/embedded-database';
import { ServiceProcess, runEnvironment } from '../support/service-process';

const START_TIMEOUT_MS = 45_000;
const BANNER = /\n {2}-{20,}\n {2}chatbox is ready[\s\S]*?\n {2}-{20,}\n\n/;
const PRETTY_LOG_LINE = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): /;
const STACK_FRAME = /^\s+at /m;

function errorLines(output: string): string[] {
  return output.split('\n').filter((line) => / ERROR: /.test(line));
}

describe('start-up of the built service', () => {
  const scratch = databaseTempDir('chatbox-startup-');
  const services: ServiceProcess[] = [];
  const start = (env: NodeJS.ProcessEnv) => {
    const service = new ServiceProcess(runEnvironment(env));
    services.push(service);
    return service;
  };

  beforeAll(() => void builtEntry());
  afterAll(() => {
    for (const service of services) service.kill();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('ends with one banner (chat and admin URLs, database, how to stop), in one log format', async () => {
    const port = await freePort();
    const dataDir = join(scratch, 'banner');
    const service = start({ PORT: String(port), DATA_DIR: dataDir });
    const output = await service.waitFor(BANNER, START_TIMEOUT_MS);
    const banner = BANNER.exec(output)![0];
    expect(banner).toMatch(new RegExp(`Chat: +http://localhost:${port}/chatbox/\\?token=\\S+`));
    expect(banner).toMatch(new RegExp(`Admin: +http://localhost:${port}/chatbox/admin-page\\?token=\\S+`));
    expect(banner).toMatch(
      /Database: +embedded FerretDB on PostgreSQL 18\.4 at mongodb:\/\/127\.0\.0\.1:\d+\/, data in .*banner\/db/,
    );
    expect(banner).toContain(`Stop:     Ctrl+C (or kill ${service.child.pid})`);
    // Before listening, the embedded PostgreSQL got its lookup indexes (decision 0010).
    expect(output).toMatch(
      /\[main\] created lookup indexes sessions_\w+__id_lookup, sessions_\w+_uid_lookup, messages_\w+_sid_lookup$/m,
    );

    expect((await fetch(`http://127.0.0.1:${port}/chatbox/readyz`)).status).toBe(200);
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);

    const bannerEnd = service.output.indexOf(banner) + banner.length;
    const beforeBanner = service.output.slice(0, service.output.indexOf(banner)).split('\n').filter(Boolean);
    const afterBanner = service.output.slice(bannerEnd).split('\n').filter(Boolean);
    // Nothing of the start-up comes after the banner: the next line is the stop we asked for.
    expect(afterBanner[0]).toMatch(/\[main\] SIGTERM received: draining$/);
    expect(beforeBanner.filter((line) => !PRETTY_LOG_LINE.test(line))).toEqual([]);
    expect(service.output).not.toMatch(/Mapped \{|dependencies initialized|RoutesResolver/);
  });

  describe('a data directory in use', () => {
    const dataDir = join(scratch, 'shared');
    let first: ServiceProcess;
    let firstPort: number;

    beforeAll(async () => {
      firstPort = await freePort();
      first = start({ PORT: String(firstPort), DATA_DIR: dataDir });
      await first.waitFor(BANNER, START_TIMEOUT_MS);
    });
    afterAll(async () => {
      first.child.kill('SIGTERM');
      await first.exited;
    });

    it("is refused with one line, and the running service's database is not touched", async () => {
      const ferretPid = Number(readFileSync(join(dataDir, 'db/ferretdb.pid'), 'utf8'));
      const lockBefore = readFileSync(join(dataDir, 'chatbox.lock'), 'utf8');

      const second = start({ PORT: String(await freePort()), DATA_DIR: dataDir });
      expect(await second.exited).not.toBe(0);
      expect(errorLines(second.output)).toEqual([
        expect.stringContaining(
          `data directory ${dataDir} is in use by another chatbox (pid ${first.child.pid}`,
        ),
      ]);
      expect(second.output).not.toMatch(STACK_FRAME);
      expect(second.output).not.toMatch(/FerretDB|EmbeddedDatabase/);

      expect(isProcessAlive(ferretPid)).toBe(true);
      expect(Number(readFileSync(join(dataDir, 'db/ferretdb.pid'), 'utf8'))).toBe(ferretPid);
      expect(readFileSync(join(dataDir, 'chatbox.lock'), 'utf8')).toBe(lockBefore);
      const ready = await fetch(`http://127.0.0.1:${firstPort}/chatbox/readyz`);
      expect(ready.status).toBe(200);
      expect(first.output).not.toMatch(/FerretDB exited|restarted/);
    });
  });

  it('takes over the lock of a run that died, and removes its own lock when it stops', async () => {
    const dataDir = join(scratch, 'stale');
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid as number;
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'chatbox.lock'), JSON.stringify({ pid: deadPid }));

    const service = start({ PORT: String(await freePort()), DATA_DIR: dataDir });
    const output = await service.waitFor(BANNER, START_TIMEOUT_MS);
    expect(output).toContain(`took over the data directory lock of an earlier run (pid ${deadPid} is gone)`);
    expect(JSON.parse(readFileSync(join(dataDir, 'chatbox.lock'), 'utf8')).pid).toBe(service.child.pid);
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    expect(() => readFileSync(join(dataDir, 'chatbox.lock'))).toThrow(/ENOENT/);
  });

  describe('a busy port', () => {
    let taken: Server;
    beforeAll(async () => {
      taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, resolve));
    });
    afterAll(() => new Promise<void>((resolve) => taken.close(() => resolve())));

    it('is refused with one line before the embedded database starts', async () => {
      const port = (taken.address() as { port: number }).port;
      const dataDir = join(scratch, 'busy-port');
      const service = start({ PORT: String(port), DATA_DIR: dataDir });
      expect(await service.exited).not.toBe(0);
      expect(errorLines(service.output)).toEqual([expect.stringContaining(`port ${port} is already in use`)]);
      expect(service.output).not.toMatch(STACK_FRAME);
      expect(() => readFileSync(join(dataDir, 'db/ferretdb.pid'))).toThrow(/ENOENT/);
      expect(() => readFileSync(join(dataDir, 'chatbox.lock'))).toThrow(/ENOENT/);
    });
  });

  it('gives up on an unreachable MONGO_URI with one line naming the address, password redacted', async () => {
    const closedPort = await freePort();
    const service = start({
      PORT: String(await freePort()),
      DATA_DIR: join(scratch, 'unreachable'),
      MONGO_URI: `mongodb://chatbox:hunter2@127.0.0.1:${closedPort}/?authSource=admin`,
      MONGO_CONNECT_TIMEOUT: '2s',
    });
    expect(await service.exited).not.toBe(0);
    expect(errorLines(service.output)).toEqual([
      expect.stringContaining(
        `cannot reach MongoDB at mongodb://chatbox:***@127.0.0.1:${closedPort}/ within 2 s`,
      ),
    ]);
    expect(service.output).toContain('check that MONGO_URI names a running server');
    expect(service.output).not.toContain('hunter2');
    expect(service.output).not.toMatch(STACK_FRAME);
  });
});
