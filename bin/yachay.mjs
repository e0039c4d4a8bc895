#!/usr/bin/env node
// Entry point: register the TypeScript loader, then hand over to the CLI. Kept in plain JS so
// `npm exec yachay` works right after `npm ci` without a separate compile step.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../daemon/main.ts');
process.exitCode = await main(process.argv.slice(2));
