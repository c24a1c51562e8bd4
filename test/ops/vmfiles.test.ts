import { describe, expect, it } from 'vitest';
import { tpmCopies } from '../../src/ops/vmfiles.js';

describe('tpmCopies', () => {
  it("finds the domain's TPM state copies by name, and only plain names under a known version folder", () => {
    expect(
      tpmCopies('web1', [
        'web1.swtpm.tpm2.tpm2-00.permall',
        'web1.swtpm.tpm1_2.tpm-00.permall',
        'web1.swtpm.tpm3.x',
        'web1.swtpm.tpm2..hidden',
        'web1.swtpm.tpm2.',
        'web10.swtpm.tpm2.tpm2-00.permall',
        'web1.nvram',
      ]),
    ).toEqual([
      { name: 'web1.swtpm.tpm2.tpm2-00.permall', folder: 'tpm2', file: 'tpm2-00.permall' },
      { name: 'web1.swtpm.tpm1_2.tpm-00.permall', folder: 'tpm1_2', file: 'tpm-00.permall' },
    ]);
  });
});
