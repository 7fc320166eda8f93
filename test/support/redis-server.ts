import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort } from '@chatbox/storage';

const START_TIMEOUT_MS = 10_000;
const POLL_MS = 50;

/**
 * A private `redis-server` for fault tests (the shared one on 6379 must keep running). By default
 * without persistence, so a restart on the same port is a Redis that lost every key, as after a crash
 * of a cache-only Redis. With `keepKeys` every write is in an append-only file (fsynced before Redis
 * answers), so a restart, even after kill -9, comes back with every key: what the instances see when
 * only their connections were lost. Killed and started again at will.
 */
export class TestRedis {
  private child?: ChildProcess;
  private dataDir?: string;
  port = 0;

  constructor(private readonly options: { keepKeys?: boolean } = {}) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts it (on the same port as before, if any) and waits until it answers PING. */
  async start(): Promise<void> {
    this.port ||= await freePort();
    const persistence = this.options.keepKeys
      ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', this.keptIn()]
      : ['--appendonly', 'no'];
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', ...persistence],
      { stdio: 'ignore' },
    );
    this.child = child;
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await answers(this.url))) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error('redis-server did not answer in time');
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** Gone at once (kill -9), its keys with it. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Killed, and its kept keys removed. */
  async remove(): Promise<void> {
    await this.kill();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  private keptIn(): string {
    this.dataDir ??= mkdtempSync(join(tmpdir(), 'chatbox-redis-'));
    return this.dataDir;
  }
}

async function answers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}
