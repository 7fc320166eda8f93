import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../..');
const SOURCE_DIRS = ['apps', 'libs'];

/** Newest modification time of the TypeScript sources the build compiles (specs excluded). */
function newestSource(dir: string): { path: string; mtimeMs: number } {
  let newest = { path: '', mtimeMs: 0 };
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const candidate = entry.isDirectory()
      ? newestSource(path)
      : entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts')
        ? { path, mtimeMs: statSync(path).mtimeMs }
        : newest;
    if (candidate.mtimeMs > newest.mtimeMs) newest = candidate;
  }
  return newest;
}

/**
 * The built entry point (`dist/apps/chatbox/src/main.js`) for tests that start the service as a
 * process. Fails loudly when it is missing or older than a source file: such a test would otherwise
 * test yesterday's code. `make test` builds first.
 */
export function builtEntry(): string {
  const entry = join(root, 'dist/apps/chatbox/src/main.js');
  if (!existsSync(entry)) throw new Error('dist/ is missing: run `npm run build` (make test does)');
  const built = statSync(entry).mtimeMs;
  const newest = SOURCE_DIRS.map((dir) => newestSource(join(root, dir))).reduce((a, b) =>
    b.mtimeMs > a.mtimeMs ? b : a,
  );
  if (newest.mtimeMs > built)
    throw new Error(
      `dist/ is stale: ${newest.path.slice(root.length + 1)} changed after the build; run \`npm run build\` (make test does)`,
    );
  return entry;
}
