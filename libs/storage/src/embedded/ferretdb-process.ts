import { ChildProcess, spawn, execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { freePort } from './free-port';

const execFileAsync = promisify(execFile);

export interface FerretDbOptions {
  binary: string;
  /** Run when the binary is missing; exit code 3 means "no Go on this machine". */
  provisionScript?: string;
  dataDir: string;
  startTimeoutMs?: number;
  /** Restart FerretDB when it exits unexpectedly (the service keeps its database). */
  supervise?: boolean;
  restartDelayMs?: number;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/**
 * The parent-death guard: FerretDB runs under a tiny shell that holds our stdin. When this Node
 * process dies for any reason (even SIGKILL) the pipe closes, `cat` returns and FerretDB is
 * terminated, so no orphan keeps the data directory. On a clean stop we close stdin ourselves.
 */
const WATCHDOG = `
exec 3<&0
"$@" </dev/null 3<&- &
child=$!
echo "$child" > "$FERRETDB_PIDFILE"
{ cat <&3 >/dev/null; kill -TERM "$child" 2>/dev/null; } &
exec 3<&-
wait "$child"
`;

const DEFAULT_START_TIMEOUT_MS = 30_000;
const PING_INTERVAL_MS = 100;
const STOP_TIMEOUT_MS = 5_000;

/** Owns one FerretDB (SQLite backend) child process on a free loopback port. */
export class FerretDbProcess {
  private child?: ChildProcess;
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

  private async spawnChild(): Promise<void> {
    const debugPort = await freePort();
    const dataDir = this.options.dataDir;
    const args = [
      '--handler=sqlite',
      `--sqlite-url=file:${dataDir}/`,
      `--listen-addr=127.0.0.1:${this.port}`,
      `--state-dir=${dataDir}`,
      '--telemetry=disable',
      `--debug-addr=127.0.0.1:${debugPort}`,
      '--log-level=warn',
    ];
    const child = spawn('/bin/sh', ['-c', WATCHDOG, 'ferretdb-watchdog', this.options.binary, ...args], {
      stdio: ['pipe', 'ignore', 'pipe'],
      // Its own process group: Ctrl+C in a terminal signals the service, which drains and then stops
      // the database last (SPEC 13), instead of the database dying under a draining service.
      detached: true,
      env: { PATH: '/usr/bin:/bin', FERRETDB_PIDFILE: this.pidFile },
    });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      child.stdin?.destroy();
      if (this.stopping) return;
      this.options.log?.(
        'error',
        `FerretDB exited unexpectedly (code ${code}, signal ${signal}): ${stderr.trim()}`,
      );
      if (this.options.supervise) this.scheduleRestart();
    });
    await this.waitForPing(() => stderr);
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

  private async waitForPing(stderr: () => string): Promise<void> {
    const deadline = Date.now() + (this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    while (Date.now() < deadline) {
      if (!this.child) throw new Error(`FerretDB exited during start-up: ${stderr().trim()}`);
      const client = new MongoClient(this.uri, { serverSelectionTimeoutMS: 500, connectTimeoutMS: 500 });
      try {
        await client.connect();
        await client.db('admin').command({ ping: 1 });
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, PING_INTERVAL_MS));
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

  /** Stops FerretDB and waits for it to exit. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    const pid = this.pid;
    if (child) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin?.end();
      const timer = setTimeout(
        () => pid && isProcessAlive(pid) && process.kill(pid, 'SIGKILL'),
        STOP_TIMEOUT_MS,
      );
      await exited;
      clearTimeout(timer);
    }
    if (pid) await waitUntil(() => !isProcessAlive(pid), STOP_TIMEOUT_MS);
    rmSync(this.pidFile, { force: true });
  }

  /** For outage tests: kills FerretDB itself (the watchdog notices and, when supervised, restarts it). */
  killForTest(signal: NodeJS.Signals = 'SIGKILL'): void {
    const pid = this.pid;
    if (pid) process.kill(pid, signal);
  }
}

/** Whether a process with this pid exists (signal 0 probes without touching it). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
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

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}
