import { ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort, isProcessAlive } from '@chatbox/storage';
import { builtEntry } from '../support/built-service';
import { databaseTempDir } from '../support/embedded-database';

const root = resolve(__dirname, '../..');
let entry = '';

function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let output = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (pattern.test(output)) {
        clearTimeout(timer);
        resolvePromise(output);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  });
}

/**
 * The built service started on a free port until its admin URL is printed. The port is free when
 * chosen but taken by the service only once its database is up, seconds later: another process of
 * the parallel suite can take it first. Then the service refuses to start, naming the port, and it
 * is started again on another one.
 */
async function startOnFreePort(
  env: NodeJS.ProcessEnv,
  onSpawn: (child: ChildProcess) => void = () => undefined,
): Promise<{ child: ChildProcess; port: number; output: string }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(process.execPath, [entry], {
      cwd: root,
      env: { ...env, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    onSpawn(child);
    const output = await waitForOutput(child, /admin-page\?token=\S+|port \d+ is already in use/, 45_000);
    if (!/is already in use/.test(output) || attempt === PORT_ATTEMPTS) return { child, port, output };
    await new Promise((resolveExit) =>
      child.exitCode !== null ? resolveExit(undefined) : child.once('exit', resolveExit),
    );
  }
}
const PORT_ATTEMPTS = 3;

/** The processes of the embedded database of a DATA_DIR: FerretDB, the postmaster and its backends. */
function embeddedDatabasePids(dataDir: string): number[] {
  const ferretPid = Number(readFileSync(join(dataDir, 'db/ferretdb.pid'), 'utf8'));
  const postmasterPid = Number(readFileSync(join(dataDir, 'db/pg/postmaster.pid'), 'utf8').split('\n')[0]);
  const backends = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmasterPid;
      } catch {
        return false;
      }
    })
    .map(Number);
  return [ferretPid, postmasterPid, ...backends];
}

/** The built service as `make run` starts it: embedded FerretDB on PostgreSQL, demo model, dev tokens. */
describe('the service process on the embedded database', () => {
  const dataDir = databaseTempDir('chatbox-process-');
  let child: ChildProcess | undefined;

  beforeAll(() => {
    entry = builtEntry();
  });

  afterAll(() => {
    if (child?.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints the chat and admin URLs with development tokens, serves health, and stops cleanly', async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'development',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
    };
    delete env.MONGO_URI;
    delete env.JWT_SECRET;
    const started = await startOnFreePort(env, (spawned) => (child = spawned));
    const { output, port } = started;
    expect(output).toMatch(/admin-page\?token=\S+/);
    expect(output).toContain(`http://localhost:${port}/chatbox/?token=`);
    expect(output).toMatch(
      /Database: +embedded FerretDB on PostgreSQL 18\.4 at mongodb:\/\/127\.0\.0\.1:\d+/,
    );

    const health = await fetch(`http://127.0.0.1:${port}/chatbox/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'healthy' });
    const ready = await fetch(`http://127.0.0.1:${port}/chatbox/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { mongodb: { status: 'ready' } } });

    const databasePids = embeddedDatabasePids(dataDir);
    expect(databasePids.length).toBeGreaterThan(2);
    expect(databasePids.filter(isProcessAlive)).toEqual(databasePids);

    const exited = new Promise<number | null>((resolveExit) =>
      started.child.once('exit', (code) => resolveExit(code)),
    );
    started.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(databasePids.filter(isProcessAlive)).toEqual([]);
  });

  it('leaves neither FerretDB nor PostgreSQL behind when the service is killed outright', async () => {
    const dir = databaseTempDir('chatbox-crash-');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'development',
      DATA_DIR: dir,
      LOG_LEVEL: 'warn',
    };
    delete env.MONGO_URI;
    let crashed: ChildProcess | undefined;
    try {
      const started = await startOnFreePort(env, (spawned) => (crashed = spawned));
      expect(started.output).toMatch(/admin-page\?token=/);
      const databasePids = embeddedDatabasePids(dir);
      expect(databasePids.length).toBeGreaterThan(2);
      started.child.kill('SIGKILL');
      const deadline = Date.now() + 15_000;
      while (databasePids.some(isProcessAlive) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(databasePids.filter(isProcessAlive)).toEqual([]);
    } finally {
      if (crashed?.exitCode === null) crashed.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start with an invalid configuration and names the variable', async () => {
    const bad = spawn(process.execPath, [entry], {
      cwd: root,
      env: { ...process.env, CHATBOX_PATH_PREFIX: 'nope', DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = await waitForOutput(bad, /CHATBOX_PATH_PREFIX/, 15_000);
    const code = bad.exitCode ?? (await new Promise<number | null>((r) => bad.once('exit', (c) => r(c))));
    expect(output).toContain('CHATBOX_PATH_PREFIX must start with "/"');
    expect(code).not.toBe(0);
  });
});
