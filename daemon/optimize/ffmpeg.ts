// Moved to daemon/media/run.ts (issue 12 item 6); kept so branches written before the move compile.
export * from '../media/run.js';
