import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterRelocationRoot, DEFAULT_RELOCATION_ROOT } from './postgres-os-user';

describe('where a cluster the database user cannot reach is relocated', () => {
  it('stays temporary for a DATA_DIR under the temporary directory', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'chatbox-relocation-'));
    try {
      expect(clusterRelocationRoot(join(dataDir, 'db/pg'))).toBe(join(realpathSync(tmpdir()), 'chatbox-db'));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('goes to /var/lib/chatbox-db otherwise', () => {
    // A fixed path outside the temporary directory: the checkout itself may live under /tmp.
    expect(clusterRelocationRoot('/srv/chatbox/data/db/pg')).toBe(DEFAULT_RELOCATION_ROOT);
  });
});
