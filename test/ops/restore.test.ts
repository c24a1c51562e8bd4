import { describe, expect, it } from 'vitest';
import { parseFrom } from '../../src/ops/restore.js';

describe('restore --from', () => {
  it('reads restic, restic:ID and folders', () => {
    expect(parseFrom('restic')).toEqual({ kind: 'restic' });
    expect(parseFrom('restic:latest')).toEqual({ kind: 'restic' });
    expect(parseFrom('restic:1a2b3c4d')).toEqual({ kind: 'restic', snapshot: '1a2b3c4d' });
    expect(parseFrom('/srv/vm')).toEqual({ kind: 'dir', dir: '/srv/vm' });
  });
});
