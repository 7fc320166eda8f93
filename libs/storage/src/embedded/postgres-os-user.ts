import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { hydrateLibrarySymlinks, PostgresBinaries } from './postgres-binaries';
import { sleep } from './watched-process';

/**
 * PostgreSQL refuses to run as root. When the service runs as root (containers, CI), PostgreSQL
 * runs as this dedicated system user instead: no home, no shell, no password.
 */
export const DEFAULT_POSTGRES_OS_USER = 'chatbox-db';

/**
 * Where binaries and clusters go when the database user cannot reach them where they are (a
 * checkout or DATA_DIR under /root, mode 0700). Created by root, traversable by everyone.
 */
export const DEFAULT_RELOCATION_ROOT = '/var/lib/chatbox-db';

/**
 * Where a cluster goes when relocated: a DATA_DIR under the temporary directory (a test's or a
 * script's mkdtemp, mode 0700) is temporary data, so its cluster stays temporary too instead of
 * outliving it in /var/lib.
 */
export function clusterRelocationRoot(anchor: string): string {
  const temporary = realpathSync(tmpdir());
  const path = resolve(anchor);
  const underTemporary = [tmpdir(), temporary].some((root) => path.startsWith(`${root}/`));
  return underTemporary ? join(temporary, 'chatbox-db') : DEFAULT_RELOCATION_ROOT;
}

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

const USER_CREATION_ATTEMPTS = 5;
const USER_CREATION_RETRY_MS = 200;

function lookupUser(name: string): OsUser | undefined {
  try {
    const id = (flag: string) =>
      Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: 'pipe' }).trim());
    return { name, uid: id('-u'), gid: id('-g') };
  } catch {
    return undefined;
  }
}

/**
 * The user PostgreSQL runs as: undefined (ourselves) unless we are root; then `name`, created
 * once as a system user. Parallel starts may race on useradd's lock: they retry and re-read.
 */
export async function postgresOsUser(name: string = DEFAULT_POSTGRES_OS_USER): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  let failure = '';
  for (let attempt = 0; attempt < USER_CREATION_ATTEMPTS; attempt++) {
    const existing = lookupUser(name);
    if (existing) return existing;
    // useradd (Debian, RHEL), else busybox adduser (Alpine)
    const created = spawnSync(
      'useradd',
      [
        '--system',
        '--user-group',
        '--no-create-home',
        '--home-dir',
        '/nonexistent',
        '--shell',
        '/usr/sbin/nologin',
        name,
      ],
      { encoding: 'utf8' },
    );
    if (created.error)
      spawnSync('adduser', ['-S', '-D', '-H', '-h', '/nonexistent', '-s', '/sbin/nologin', name], {
        encoding: 'utf8',
      });
    failure = created.stderr || created.error?.message || '';
    await sleep(USER_CREATION_RETRY_MS);
  }
  const user = lookupUser(name);
  if (user) return user;
  throw new Error(
    `PostgreSQL refuses to run as root and the system user '${name}' for it could not be created (${failure.trim()}). ` +
      `Create it (useradd --system ${name}), run the service as a non-root user, or set MONGO_URI.`,
  );
}

/** Whether `user` can enter `directory` (every parent searchable). Asks the kernel, as that user. */
export function canTraverse(user: OsUser, directory: string): boolean {
  return (
    spawnSync('/bin/sh', ['-c', 'cd "$1"', 'traverse', directory], { uid: user.uid, gid: user.gid })
      .status === 0
  );
}

/**
 * The binaries as `user` can run them: where npm put them, or else (a checkout under /root) a
 * copy under `relocationRoot`, made once per package version by copy-then-rename so that
 * parallel starts do not see half a copy.
 */
export function binariesReachableBy(
  user: OsUser,
  binaries: PostgresBinaries,
  relocationRoot: string,
  log: (message: string) => void,
): PostgresBinaries {
  if (canTraverse(user, join(binaries.nativeDir, 'bin'))) return binaries;
  const packageName = basename(dirname(binaries.nativeDir));
  const target = join(relocationRoot, `postgresql-${binaries.packageVersion}-${packageName}`);
  const nativeDir = join(target, 'native');
  if (!existsSync(join(target, '.complete'))) {
    ensureTraversable(relocationRoot);
    const staging = `${target}.${process.pid}.tmp`;
    rmSync(staging, { recursive: true, force: true });
    cpSync(binaries.nativeDir, join(staging, 'native'), { recursive: true, verbatimSymlinks: true });
    writeFileSync(join(staging, '.complete'), `${binaries.nativeDir}\n`);
    chmodSync(staging, 0o755);
    try {
      renameSync(staging, target);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another process won the race
    }
  }
  log(
    `the PostgreSQL user ${user.name} cannot reach ${binaries.nativeDir}: using a copy of the binaries in ${nativeDir}`,
  );
  hydrateLibrarySymlinks(nativeDir);
  return {
    ...binaries,
    nativeDir,
    initdb: join(nativeDir, 'bin', 'initdb'),
    postgres: join(nativeDir, 'bin', 'postgres'),
  };
}

/**
 * Resolves the cluster directory for `anchor` (DATA_DIR/db/pg). Normally the anchor itself. When
 * we are root and the database user cannot traverse to it (DATA_DIR under /root), the cluster
 * lives in `relocationRoot/clusters/<hash of DATA_DIR/db>` and the anchor becomes a symlink to it,
 * so DATA_DIR/db still says where the data is. Creates the directory (mode 0700, owned by `user`).
 */
export function prepareClusterDirectory(
  anchor: string,
  user: OsUser | undefined,
  relocationRoot: string,
  log: (message: string) => void,
): string {
  mkdirSync(dirname(anchor), { recursive: true });
  let clusterDir = anchor;
  if (isSymlink(anchor)) {
    clusterDir = resolve(dirname(anchor), realpathOrTarget(anchor));
    if (user) log(`the PostgreSQL cluster lives in ${clusterDir}, linked from ${anchor}`);
  } else if (user && !canTraverse(user, dirname(anchor))) {
    if (existsSync(join(anchor, 'PG_VERSION')))
      throw new Error(
        `The PostgreSQL cluster ${anchor} is not reachable by the database user ${user.name}: ` +
          `make every parent directory searchable (chmod o+x) or move it, or set MONGO_URI.`,
      );
    const hash = createHash('sha256')
      .update(realpathSync(dirname(anchor)))
      .digest('hex')
      .slice(0, 16);
    clusterDir = join(relocationRoot, 'clusters', hash);
    ensureTraversable(relocationRoot);
    ensureTraversable(join(relocationRoot, 'clusters'));
    mkdirSync(clusterDir, { recursive: true, mode: 0o700 });
    if (existsSync(anchor) && readdirSync(anchor).length === 0) rmdirSync(anchor);
    symlinkSync(clusterDir, anchor);
    log(
      `the PostgreSQL user ${user.name} cannot reach ${dirname(anchor)} (a parent directory is not searchable): ` +
        `its cluster lives in ${clusterDir}, linked from ${anchor}`,
    );
  }
  mkdirSync(dirname(clusterDir), { recursive: true, mode: 0o755 });
  mkdirSync(clusterDir, { recursive: true, mode: 0o700 });
  if (user) {
    const owner = statSync(clusterDir).uid;
    if (owner !== user.uid) chownTree(clusterDir, user);
  }
  return clusterDir;
}

/** Creates `directory` and makes it (not its parents, which are the system's) searchable by all. */
function ensureTraversable(directory: string): void {
  mkdirSync(directory, { recursive: true, mode: 0o755 });
  chmodSync(directory, 0o755);
}

function chownTree(directory: string, user: OsUser): void {
  chownSync(directory, user.uid, user.gid);
  for (const entry of readdirSync(directory, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (!entry.isSymbolicLink()) chownSync(path, user.uid, user.gid);
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function realpathOrTarget(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    // a dangling link (the relocated cluster was removed): recreate the directory it names
    return resolve(dirname(path), readlinkSync(path));
  }
}
