import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The module boundaries of the README are the code's: `scripts/module-graph.json` says which lib may
 * import which, ESLint enforces it per lib, the README shows the same graph, and every lib's real
 * imports stay within it.
 */
const root = resolve(__dirname, '../..');
const { $comment: _about, ...graph } = JSON.parse(
  readFileSync(join(root, 'scripts/module-graph.json'), 'utf8'),
) as Record<string, string[]>;

function sourcesOf(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourcesOf(join(directory, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(directory, entry.name)]
        : [],
  );
}

describe('module boundaries', () => {
  /** The project's ESLint (its own process: the flat config is an ES module) on code placed at `filePath`. */
  async function problems(code: string, filePath: string): Promise<string[]> {
    const run = spawnSync(
      process.execPath,
      [
        join(root, 'node_modules/eslint/bin/eslint.js'),
        '--stdin',
        '--stdin-filename',
        filePath,
        '--format',
        'json',
      ],
      { cwd: root, input: code, encoding: 'utf8' },
    );
    const [result] = JSON.parse(run.stdout) as { messages: { ruleId: string; message: string }[] }[];
    return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
  }

  it('lint refuses an import the graph does not allow, and one past a lib’s index', async () => {
    expect(
      await problems(
        "import { SessionService } from '@chatbox/session';\nexport const x = SessionService;\n",
        'libs/storage/src/forbidden.ts',
      ),
    ).toEqual([expect.stringContaining('storage may import only common')]);
    expect(
      await problems(
        "import { LlmService } from '@chatbox/llm';\nexport const x = LlmService;\n",
        'libs/gateway/src/forbidden.ts',
      ),
    ).toEqual([expect.stringContaining('gateway may import only session, common')]);
    expect(
      await problems(
        "import { instant } from '@chatbox/session/session-events';\nexport const x = instant;\n",
        'libs/gateway/src/deep.ts',
      ),
    ).toEqual([expect.stringContaining('through its index')]);
    expect(
      await problems(
        "import { ConversationStore } from '@chatbox/storage';\nexport const x = ConversationStore;\n",
        'libs/session/src/allowed.ts',
      ),
    ).toEqual([]);
  });

  it('the README shows exactly the enforced graph', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const shown: Record<string, string[]> = {};
    for (const match of readme.matchAll(/^([a-z]+)\s+→ (.+)$/gm))
      shown[match[1]] = match[2].split(',').map((lib) => lib.trim());
    const { common: _none, ...withEdges } = graph;
    expect(shown).toEqual(withEdges);
  });

  it('every lib imports only what the graph allows (nothing imports gateway or admin)', () => {
    for (const [lib, allowed] of Object.entries(graph)) {
      const imported = new Set(
        sourcesOf(join(root, 'libs', lib, 'src')).flatMap((file) =>
          [...readFileSync(file, 'utf8').matchAll(/from '@chatbox\/([a-z-]+)/g)].map((m) => m[1]),
        ),
      );
      imported.delete(lib);
      expect({ lib, imports: [...imported].filter((other) => !allowed.includes(other)) }).toEqual({
        lib,
        imports: [],
      });
    }
    expect(Object.values(graph).flat()).not.toContain('gateway');
    expect(Object.values(graph).flat()).not.toContain('admin');
  });

  it('the session layer builds no wire frame: it emits typed events, the gateway renders them', () => {
    // Keys only the SPEC 4.2 envelope has (stored `meta` keys such as `model_id` are data, not frames).
    // session-views.ts and api-models.ts are the REST shapes of SPEC 5 that gateway and admin share.
    const envelopeKey =
      /(?:^|[{,])\s*(session_id|user_id|file_id|file_url|message_id|catch_up|new_session|admin_id|admin_name|retry_after)\s*:/gm;
    const restShapes = ['session-views.ts', 'api-models.ts'];
    const framed = sourcesOf(join(root, 'libs/session/src'))
      .filter((file) => !file.endsWith('.spec.ts') && !restShapes.some((name) => file.endsWith(name)))
      .flatMap((file) =>
        [...readFileSync(file, 'utf8').matchAll(envelopeKey)].map(
          (m) => `${file.slice(root.length)}: ${m[1]}`,
        ),
      );
    expect(framed).toEqual([]);
    const mapper = readFileSync(join(root, 'libs/gateway/src/frame-mapper.ts'), 'utf8');
    expect(mapper).toContain('session_id: event.sessionId');
  });
});
