import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { freePort } from './free-port';
import {
  isProcessAlive,
  settlesWithin,
  signalProcess,
  sleep,
  spawnWatched,
  waitUntil,
  WatchedProcess,
} from './watched-process';

const execFileAsync = promisify(execFile);

/**
 * FerretDB's storage: its SQLite handler (files in `dataDir`) or its PostgreSQL handler (the URL is
 * read at each spawn, once the server it names is up).
 */
export type FerretDbBackend = { handler: 'sqlite' } | { handler: 'postgresql'; postgresqlUrl: () => string };

export interface FerretDbOptions {
  binary: string;
  /** Run when the binary is missing; exit code 3 means "no Go on this machine". */
  provisionScript?: string;
  /** State directory and pid file (and the SQLite files with the SQLite handler). */
  dataDir: string;
  /** Default: SQLite. */
  backend?: FerretDbBackend;
  startTimeoutMs?: number;
  /** Restart FerretDB when it exits unexpectedly (the service keeps its database). */
  supervise?: boolean;
  restartDelayMs?: number;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

const DEFAULT_START_TIMEOUT_MS = 30_000;
const PING_INTERVAL_MS = 100;
/**
 * SIGTERM gets this long before SIGKILL: FerretDB drains its connections on SIGTERM, and one whose
 * PostgreSQL pool is deadlocked (see docs/decisions/0008) took ~10 s to give up.
 */
const STOP_TIMEOUT_MS = 5_000;

/** Owns one FerretDB child process on a free loopback port. */
export class FerretDbProcess {
  private watched?: WatchedProcess;
  private port?: number;
  private stopping = false;
  private restartTimer?: NodeJS.Timeout;

  constructor(private readonly options: FerretDbOptions) {}

  get uri(): string {
    if (this.port === undefined) throw new Error('FerretDB is not started');
    return `mongodb://127.0.0.1:${this.port}/`;
  }

  /** PID of the FerretDB process itself (not the watchdog shell). */
  get pid(): number | undefined {
    try {
      return Number(readFileSync(this.pidFile, 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  }

  private get pidFile(): string {
    return join(this.options.dataDir, 'ferretdb.pid');
  }

  async provision(): Promise<void> {
    if (existsSync(this.options.binary)) return;
    if (!this.options.provisionScript || !existsSync(this.options.provisionScript))
      throw new Error(
        `FerretDB binary ${this.options.binary} is missing. Run 'make run' (it provisions it with Go), ` +
          `or set MONGO_URI to a MongoDB you run, or use 'docker compose up'.`,
      );
    this.options.log?.('info', `provisioning FerretDB into ${this.options.binary}`);
    try {
      await execFileAsync('bash', [this.options.provisionScript, this.options.binary], {
        maxBuffer: 16 * 1024 * 1024,
      });
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new Error(
        `Cannot provision the embedded database:\n${stderr.trim() || (error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }

  async start(): Promise<string> {
    await this.provision();
    mkdirSync(this.options.dataDir, { recursive: true });
    await this.killStale();
    this.port ??= await freePort();
    this.stopping = false;
    await this.spawnChild();
    return this.uri;
  }

  private handlerArgs(): string[] {
    const backend = this.options.backend ?? { handler: 'sqlite' };
    return backend.handler === 'sqlite'
      ? ['--handler=sqlite', `--sqlite-url=file:${this.options.dataDir}/`]
      : ['--handler=postgresql', `--postgresql-url=${backend.postgresqlUrl()}`];
  }

  private async spawnChild(): Promise<void> {
    const debugPort = await freePort();
    const dataDir = this.options.dataDir;
    const args = [
      ...this.handlerArgs(),
      `--listen-addr=127.0.0.1:${this.port}`,
      `--state-dir=${dataDir}`,
      '--telemetry=disable',
      `--debug-addr=127.0.0.1:${debugPort}`,
      '--log-level=warn',
    ];
    const watched = spawnWatched(this.options.binary, args, {
      name: 'ferretdb-watchdog',
      signal: 'TERM',
      pidFile: this.pidFile,
    });
    this.watched = watched;
    void watched.exited.then(({ code, signal }) => {
      if (this.watched === watched) this.watched = undefined;
      if (this.stopping) return;
      this.options.log?.(
        'error',
        `FerretDB exited unexpectedly (code ${code}, signal ${signal}): ${watched.stderrTail().trim()}`,
      );
      if (this.options.supervise) this.scheduleRestart();
    });
    await this.waitForPing(watched);
  }

  private scheduleRestart(): void {
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.spawnChild().then(
        () => this.options.log?.('warn', 'FerretDB restarted'),
        (error: Error) => {
          this.options.log?.('error', `FerretDB restart failed: ${error.message}`);
          this.scheduleRestart();
        },
      );
    }, this.options.restartDelayMs ?? 1000);
  }

  private async waitForPing(watched: WatchedProcess): Promise<void> {
    const deadline = Date.now() + (this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    while (Date.now() < deadline) {
      if (this.watched !== watched)
        throw new Error(`FerretDB exited during start-up: ${watched.stderrTail().trim()}`);
      const client = new MongoClient(this.uri, { serverSelectionTimeoutMS: 500, connectTimeoutMS: 500 });
      try {
        await client.connect();
        await client.db('admin').command({ ping: 1 });
        return;
      } catch {
        await sleep(PING_INTERVAL_MS);
      } finally {
        await client.close().catch(() => undefined);
      }
    }
    throw new Error(
      `FerretDB did not answer ping within ${this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS} ms`,
    );
  }

  /**
   * A FerretDB left on this data directory by a run that died without its watchdog is stopped.
   * One whose watchdog still runs belongs to a live service: it is never touched (refused instead).
   */
  private async killStale(): Promise<void> {
    const pid = this.pid;
    if (!pid) return;
    if (isFerretDbOn(pid, this.options.dataDir)) {
      if (hasLiveWatchdog(pid))
        throw new Error(
          `the embedded database in ${this.options.dataDir} is in use by another service (FerretDB pid ${pid})`,
        );
      this.options.log?.('warn', `stopping orphaned FerretDB (pid ${pid}) left by an earlier run`);
      process.kill(pid, 'SIGTERM');
      await waitUntil(() => !isProcessAlive(pid), STOP_TIMEOUT_MS);
    }
    rmSync(this.pidFile, { force: true });
  }

  /** Stops FerretDB (SIGTERM, then SIGKILL after a grace period) and waits for it to exit. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const watched = this.watched;
    const pid = this.pid;
    if (watched) {
      watched.release();
      const exited = await settlesWithin(watched.exited, STOP_TIMEOUT_MS);
      if (!exited && pid) {
        this.options.log?.('warn', `FerretDB did not stop within ${STOP_TIMEOUT_MS} ms: sending SIGKILL`);
        signalProcess(pid, 'SIGKILL');
      }
      await watched.exited;
    }
    if (pid) await waitUntil(() => !isProcessAlive(pid), STOP_TIMEOUT_MS);
    rmSync(this.pidFile, { force: true });
  }

  /** For fault tests: signals FerretDB itself (the watchdog notices and, when supervised, restarts it). */
  killForTest(signal: NodeJS.Signals = 'SIGKILL'): void {
    const pid = this.pid;
    if (pid) process.kill(pid, signal);
  }
}

function procText(pid: number, file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
}

function isFerretDbOn(pid: number, dataDir: string): boolean {
  const cmdline = procText(pid, 'cmdline');
  return cmdline.includes('ferretdb') && cmdline.includes(dataDir);
}

/** The parent of a FerretDB we started is the watchdog shell, alive exactly as long as its service. */
function hasLiveWatchdog(pid: number): boolean {
  const stat = procText(pid, 'stat');
  const parentPid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  return parentPid > 1 && procText(parentPid, 'cmdline').includes('ferretdb-watchdog');
}
