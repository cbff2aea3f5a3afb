#!/usr/bin/env node
// Runs the TypeScript CLI directly: Node 22.18+/24 strip types natively, so there is no build step.
import '../src/cli.ts';
