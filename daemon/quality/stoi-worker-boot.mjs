// Entry of the STOI worker thread. Plain JS because a worker does not inherit the TypeScript
// loader the CLI registered; tsx loads the real body for this thread only.
import { tsImport } from 'tsx/esm/api';

await tsImport('./stoi-worker-thread.ts', import.meta.url);
