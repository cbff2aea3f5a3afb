import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// `intentgate-source` resolves @intentgate/agent and @intentgate/resource to their TypeScript sources in
// this repository (their published exports point at the built dist/).
const conditions = ['intentgate-source', ...defaultServerConditions];

export default defineConfig({
  ssr: { resolve: { conditions } },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global_setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Each file starts its own server and database; two at a time fits a 2-core machine.
    maxWorkers: 2,
  },
});
