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
    // Bounds for a hang, not for speed: a test or a server start on a machine busy with other work can take
    // several times as long as on a quiet one, and nothing may fail for that alone.
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Each file starts its own server and database; two at a time fits a 2-core machine.
    maxWorkers: 2,
    // A worker keeps the modules it imported (the server, oidc-provider, knex, PGlite) for its next file instead
    // of importing them again: a third of the suite's CPU time went to those imports. Each file still starts
    // its own server on its own database, and no module of src/ keeps state between servers.
    isolate: false,
  },
});
