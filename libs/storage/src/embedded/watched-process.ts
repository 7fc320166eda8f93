import { ChildProcess, spawn } from 'node:child_process';

/**
 * The parent-death guard: the child runs under a tiny shell that holds our stdin. When this Node
 * process dies for any reason (even SIGKILL) the pipe closes, `cat` returns and the shell sends the
 * child `$WATCHDOG_SIGNAL`, so no orphan keeps the data directory. A clean stop closes stdin itself.
 * `$WATCHDOG_PIDFILE` (optional) receives the child's own pid.
 */
const WATCHDOG = `
exec 3<&0
"$@" </dev/null 3<&- &
child=$!
[ -z "$WATCHDOG_PIDFILE" ] || echo "$child" > "$WATCHDOG_PIDFILE"
{ cat <&3 >/dev/null; kill -"$WATCHDOG_SIGNAL" "$child" 2>/dev/null; } &
exec 3<&-
wait "$child"
`;

const STDERR_TAIL_CHARS = 4000;

export interface WatchedSpawnOptions {
  /** The shell's $0, so that `ps` (and a later start's stale-process check) can tell whose it is. */
  name: string;
  /** Signal the child gets when this process goes away (without the SIG prefix: TERM, INT). */
  signal: 'TERM' | 'INT';
  pidFile?: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Run as this user (we are root and the child must not be). */
  uid?: number;
  gid?: number;
}

export interface WatchedProcess {
  child: ChildProcess;
  /** The last few KB the child wrote to stderr (its log). */
  stderrTail(): string;
  /** Resolves when the watchdog shell (and so the child) has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Closes the pipe: the watchdog sends the child its signal. */
  release(): void;
}

/** Spawns `command args` under the watchdog shell. */
export function spawnWatched(command: string, args: string[], options: WatchedSpawnOptions): WatchedProcess {
  const child = spawn('/bin/sh', ['-c', WATCHDOG, options.name, command, ...args], {
    stdio: ['pipe', 'ignore', 'pipe'],
    // Its own process group: Ctrl+C in a terminal signals the service, which drains and then stops
    // the database last (SPEC 13), instead of the database dying under a draining service.
    detached: true,
    cwd: options.cwd,
    env: {
      PATH: '/usr/bin:/bin',
      WATCHDOG_SIGNAL: options.signal,
      WATCHDOG_PIDFILE: options.pidFile ?? '',
      ...options.env,
    },
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid }),
  });
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-STDERR_TAIL_CHARS);
  });
  // A stdin write after the shell exited must not crash the service.
  child.stdin?.on('error', () => undefined);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      child.stdin?.destroy();
      resolve({ code, signal });
    }),
  );
  return { child, stderrTail: () => tail, exited, release: () => child.stdin?.end() };
}

/** Whether a process with this pid exists (signal 0 probes without touching it). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user (the database user, when we are not root).
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends a signal when the process still exists; a race with its exit is not an error. */
export function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Whether `promise` settles within `ms` (the timer is cleared either way: it must not hold the process). */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` until it holds or `timeoutMs` passes; tells which. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}
