import { lookupIndexName } from './lookup-indexes';

describe('lookupIndexName', () => {
  it('names the index after its table and field', () => {
    expect(lookupIndexName('sessions_130573cc', 'uid')).toBe('sessions_130573cc_uid_lookup');
  });

  it('stays within PostgreSQL identifiers (63 bytes) and apart for each field of a long table name', () => {
    const table = `${'a'.repeat(54)}_0123abcd`; // FerretDB's longest: 63 characters with its hash
    const names = ['_id', 'uid', 'sid'].map((field) => lookupIndexName(table, field));
    for (const name of names) {
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(/^a+_[0-9a-f]{8}_lookup$/);
    }
    expect(new Set(names).size).toBe(3);
  });
});
