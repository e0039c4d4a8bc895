// Moved to daemon/media/child.ts (issue 12 item 6); kept so branches written before the move compile.
export * from '../media/child.js';
