import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isServerMetadataKey, SERVER_METADATA_KEYS } from './server-metadata';

/** Every .ts source (not specs) of this module. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') && !path.endsWith('.spec.ts') ? [readFileSync(path, 'utf8')] : [];
  });
}

describe('server-owned metadata keys', () => {
  it('cover every key the session module stores in meta and the gateway writes into frame metadata', () => {
    // Object literals assigned to `metadata:` / `meta:` / `const meta … =`, with their nested literals.
    const frameMapper = readFileSync(resolve(__dirname, '../../gateway/src/frame-mapper.ts'), 'utf8');
    const literals = [...sources(__dirname), frameMapper].flatMap((text) =>
      [
        ...text.matchAll(
          /\b(?:metadata|meta)(?:: Record<string, string>)?\s*[:=]\s*\{((?:[^{}]|\{[^{}]*\})*)\}/g,
        ),
      ].map((match) => match[1]),
    );
    const written = new Set(
      literals.flatMap((body) =>
        [...body.matchAll(/(?:^|[\s,{(])([a-z][a-z_]*):/g)].map((match) => match[1]),
      ),
    );
    expect(written.size).toBeGreaterThan(10);
    expect([...written].filter((key) => !isServerMetadataKey(key))).toEqual([]);
  });

  it('includes the keys the issue names and every admin_ key', () => {
    for (const key of [
      'transcription',
      'message_id',
      'seq',
      'streaming',
      'done',
      'status',
      'tokens',
      'model_id',
    ])
      expect(SERVER_METADATA_KEYS.has(key)).toBe(true);
    expect(isServerMetadataKey('admin_anything')).toBe(true);
    expect(isServerMetadataKey('filename')).toBe(false);
  });
});
