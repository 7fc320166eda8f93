import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

const LOCK_FILE_NAME = 'chatbox.lock';
/** Another starter may move the file between our look and our link: retry a few times, then give up. */
const ACQUIRE_ATTEMPTS = 3;

/** Who holds a data directory, as written into the lock file. */
export interface DataDirOwner {
  pid: number;
  hostname?: string;
  since?: string;
}

/** A second service on a data directory would corrupt the embedded database: start-up stops with this. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly owner: DataDirOwner,
    readonly lockFile: string,
  ) {
    super(
      `data directory ${dataDir} is in use by another chatbox (pid ${owner.pid}${owner.since ? `, since ${owner.since}` : ''}): ` +
        `stop that one first, or start this one with another DATA_DIR (lock file ${lockFile})`,
    );
    this.name = 'DataDirInUseError';
  }
}

/**
 * One service per data directory (SPEC 11): a lock file holding the owner's PID. A lock whose PID is
 * no longer running (a crash, a `kill -9`, a container restart) is stale and taken over; a lock
 * whose PID runs refuses the start. The file is created with an atomic `link`, so two starters
 * racing for a free directory cannot both win.
 */
export class DataDirLock {
  readonly path: string;
  private held = false;

  constructor(
    readonly dataDir: string,
    private readonly pid: number = process.pid,
  ) {
    this.path = join(dataDir, LOCK_FILE_NAME);
  }

  /**
   * Takes the lock.
   * @returns the owner of a stale lock that was taken over, if any (worth a log line)
   * @throws DataDirInUseError when a running process holds it
   */
  acquire(): DataDirOwner | undefined {
    mkdirSync(this.dataDir, { recursive: true });
    let takenOver: DataDirOwner | undefined;
    for (let attempt = 0; attempt < ACQUIRE_ATTEMPTS; attempt++) {
      if (this.tryCreate()) {
        this.held = true;
        return takenOver;
      }
      const owner = readOwner(this.path);
      if (owner && this.isLiveOther(owner)) throw new DataDirInUseError(this.dataDir, owner, this.path);
      takenOver = owner ?? takenOver;
      this.removeStale();
    }
    const owner = readOwner(this.path) ?? { pid: 0 };
    throw new DataDirInUseError(this.dataDir, owner, this.path);
  }

  /** Gives the lock up; leaves a lock that another process took over alone. Safe to call twice. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    if (readOwner(this.path)?.pid === this.pid) rmSync(this.path, { force: true });
  }

  private tryCreate(): boolean {
    const staging = `${this.path}.${this.pid}.tmp`;
    const owner: DataDirOwner = { pid: this.pid, hostname: hostname(), since: new Date().toISOString() };
    writeFileSync(staging, `${JSON.stringify(owner)}\n`);
    try {
      linkSync(staging, this.path);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      rmSync(staging, { force: true });
    }
  }

  /**
   * Moves the stale file aside first (atomic), then checks what was moved: when another starter
   * replaced the stale lock with its own fresh one in between, that one is put back.
   */
  private removeStale(): void {
    const aside = `${this.path}.stale.${this.pid}`;
    try {
      renameSync(this.path, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    try {
      const moved = readOwner(aside);
      if (moved && this.isLiveOther(moved)) {
        try {
          linkSync(aside, this.path);
        } catch {
          // a third starter holds it now: it wins, we refuse on the next attempt
        }
      }
    } finally {
      rmSync(aside, { force: true });
    }
  }

  /** Our own PID in the file means a previous run of ours (a restarted container is PID 1 again). */
  private isLiveOther(owner: DataDirOwner): boolean {
    return owner.pid !== this.pid && isRunning(owner.pid);
  }
}

function readOwner(path: string): DataDirOwner | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as Partial<DataDirOwner> | number;
    const owner = typeof parsed === 'number' ? { pid: parsed } : parsed;
    return Number.isInteger(owner?.pid) && (owner.pid as number) > 0 ? (owner as DataDirOwner) : undefined;
  } catch {
    return undefined;
  }
}

/** Signal 0 probes without touching the process; EPERM means it runs under another user. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
