import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirInUseError, DataDirLock } from './data-dir-lock';

/** The PID of a process that has already exited (never reused this quickly in practice). */
function deadPid(): number {
  const result = spawnSync(process.execPath, ['-e', '']);
  return result.pid as number;
}

describe('DataDirLock', () => {
  let dataDir: string;
  const otherLivePid = process.ppid;

  beforeEach(() => {
    dataDir = join(mkdtempSync(join(tmpdir(), 'chatbox-lock-')), 'data');
  });
  afterEach(() => rmSync(join(dataDir, '..'), { recursive: true, force: true }));

  it('creates the data directory and a lock file holding its PID, removed on release', () => {
    const lock = new DataDirLock(dataDir);
    expect(lock.acquire()).toBeUndefined();
    expect(JSON.parse(readFileSync(lock.path, 'utf8'))).toMatchObject({ pid: process.pid });
    lock.release();
    expect(existsSync(lock.path)).toBe(false);
    lock.release();
  });

  it('refuses while a running process holds the directory, and leaves its lock alone', () => {
    const running = new DataDirLock(dataDir, otherLivePid);
    running.acquire();
    const before = readFileSync(running.path, 'utf8');

    const second = new DataDirLock(dataDir);
    expect(() => second.acquire()).toThrow(DataDirInUseError);
    try {
      second.acquire();
    } catch (error) {
      expect((error as Error).message).toContain(`in use by another chatbox (pid ${otherLivePid}`);
      expect((error as Error).message).toContain(dataDir);
      expect((error as Error).message).not.toContain('\n');
    }
    second.release();
    expect(readFileSync(running.path, 'utf8')).toBe(before);
  });

  it('takes over a lock whose owner no longer runs', () => {
    const stalePid = deadPid();
    new DataDirLock(dataDir, stalePid).acquire();

    const lock = new DataDirLock(dataDir);
    expect(lock.acquire()).toMatchObject({ pid: stalePid });
    expect(JSON.parse(readFileSync(lock.path, 'utf8')).pid).toBe(process.pid);
    lock.release();
  });

  it('takes over a lock left by an earlier run with the same PID (a restarted container)', () => {
    new DataDirLock(dataDir).acquire();
    const again = new DataDirLock(dataDir);
    expect(again.acquire()).toMatchObject({ pid: process.pid });
  });

  it('takes over an unreadable lock file', () => {
    new DataDirLock(dataDir).acquire();
    writeFileSync(join(dataDir, 'chatbox.lock'), 'garbage');
    const lock = new DataDirLock(dataDir);
    expect(lock.acquire()).toBeUndefined();
    expect(JSON.parse(readFileSync(lock.path, 'utf8')).pid).toBe(process.pid);
  });

  it('does not delete a lock another process has taken over since', () => {
    const lock = new DataDirLock(dataDir);
    lock.acquire();
    writeFileSync(lock.path, JSON.stringify({ pid: otherLivePid }));
    lock.release();
    expect(JSON.parse(readFileSync(lock.path, 'utf8')).pid).toBe(otherLivePid);
  });
});
