import { afterAll, afterEach, beforeEach } from 'vitest';
import { createTestDomain } from './domain.js';
import type { TestDomain, TestDomainOptions } from './domain.js';

/**
 * Registers vitest hooks that clean up: domains created inside a test after that test, domains
 * created in beforeAll after the file. Use create() in place of createTestDomain().
 */
export function useTestDomains(): { create: (options?: TestDomainOptions) => Promise<TestDomain> } {
  const perTest = new Set<TestDomain>();
  const perFile = new Set<TestDomain>();
  let inTest = false;
  beforeEach(() => {
    inTest = true;
  });
  afterEach(async () => {
    inTest = false;
    await cleanupSet(perTest);
  });
  afterAll(async () => {
    await cleanupSet(perFile);
  });
  return {
    create: async (options) => {
      const domain = await createTestDomain(options);
      (inTest ? perTest : perFile).add(domain);
      return domain;
    },
  };
}

async function cleanupSet(domains: Set<TestDomain>): Promise<void> {
  const all = [...domains];
  domains.clear();
  for (const domain of all) await domain.cleanup();
}
