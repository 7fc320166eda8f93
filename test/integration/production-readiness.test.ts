/**
 * Guards for defect classes of docs/production-readiness.md that no behavioural test covers:
 * where connections to MongoDB and Redis may be created (a takeover or a request must never open
 * its own), and that `npm ci` works from a clean checkout (the lock file matches package.json).
 * Needs no database: it reads the sources.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parse } from 'yaml';

const root = resolve(__dirname, '../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** Every non-test .ts file under a directory, relative to the repository root. */
function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(join(root, path)).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.spec.ts') ? [path] : [];
  });
}
const sources = [...sourceFiles('libs'), ...sourceFiles('apps')].map((path) => ({
  path: relative(root, join(root, path)),
  text: read(path),
}));

/**
 * Connections are created in a few singleton providers only, never per request or per takeover.
 * A new place that constructs a client must be added here deliberately.
 */
describe('connections are created in one place each (no per-request or per-takeover client)', () => {
  const creators = (pattern: RegExp) =>
    sources
      .filter(({ text }) => pattern.test(text))
      .map(({ path }) => path)
      .sort();

  it('MongoDB: the Mongoose pool of StorageModule, plus the start-up probes of both databases', () => {
    const probes = [
      'libs/storage/src/embedded/ferretdb-process.ts',
      'libs/storage/src/mongo-reachability.ts',
    ];
    expect(
      creators(
        /new MongoClient\(|MongoClient\.connect\(|mongoose\.connect\(|createConnection\(|MongooseModule\.forRoot/,
      ),
    ).toEqual([...probes, 'libs/storage/src/storage.module.ts'].sort());
    // The start-up probes close their clients.
    for (const probe of probes) expect(read(probe)).toMatch(/client\.close\(/);
  });

  it('Redis: only the link (one command and one subscriber connection; limits and readiness use it)', () => {
    expect(creators(/new Redis\(|new IORedis\(/)).toEqual(['libs/session/src/multi-instance/redis-link.ts']);
    expect(read('libs/session/src/multi-instance/redis-link.ts').match(/new Redis\(/g)).toHaveLength(2);
  });
});

describe('a clean checkout installs', () => {
  const pkg = JSON.parse(read('package.json'));
  const lock = JSON.parse(read('package-lock.json'));

  it('package-lock.json matches package.json (npm ci refuses a lock file out of sync)', () => {
    expect(lock.name).toBe(pkg.name);
    // `npm install --save-optional` also lists optional dependencies among the root's dependencies
    const optional = Object.keys(pkg.optionalDependencies ?? {});
    const required = Object.entries(lock.packages[''].dependencies as Record<string, string>).filter(
      ([name]) => !optional.includes(name),
    );
    expect(Object.fromEntries(required)).toEqual(pkg.dependencies);
    expect(lock.packages[''].optionalDependencies).toEqual(pkg.optionalDependencies);
    expect(lock.packages[''].devDependencies).toEqual(pkg.devDependencies);
  });

  it('pins exact versions, and the lock resolves each to that version', () => {
    const all = { ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.devDependencies };
    for (const [name, version] of Object.entries(all)) {
      // exact, a pre-release tag included (the embedded PostgreSQL binaries are `18.4.0-beta.17`)
      expect({ name, version }).toEqual({
        name,
        version: expect.stringMatching(/^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$/),
      });
      expect({ name, locked: lock.packages[`node_modules/${name}`]?.version }).toEqual({
        name,
        locked: version,
      });
    }
  });

  it('CI and the image install with npm ci only', () => {
    const workflow = read('.github/workflows/ci.yml');
    const runs = Object.values(parse(workflow).jobs as Record<string, { steps: { run?: string }[] }>)
      .flatMap((job) => job.steps)
      .map((step) => step.run ?? '')
      .join('\n');
    expect(runs).toMatch(/npm ci\b/);
    expect(runs).not.toMatch(/npm install\b|npm i\b/);
    expect(read('Dockerfile')).not.toMatch(/npm install\b/);
  });
});
