import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout (or installed package) the program runs from: models/, native/ and package.json are here. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where things live under the data dir. One place, so the HTTP server, the worker and the sync
 * agree on the content store.
 */
export interface DataPaths {
  root: string;
  db: string;
  /** published packages, one folder per lesson: store/<lessonId>/master.m3u8 */
  store: string;
  /** recordings as uploaded or synced, before optimizing */
  sources: string;
  /** uploads in progress (resumable) */
  uploads: string;
  /** the broker's persistence (LevelDB) */
  broker: string;
  /** the one-time token that creates the first admin, while there is none (users/setup-token.ts) */
  setupToken: string;
  /**
   * the box's own origin (daemon/pkg/origin.ts): signed manifests and content-addressed blobs of
   * every lesson that came from the hub; store/<id>/ holds hard links to these blobs
   */
  origin: string;
  /** the bridge's credentials and the hub's public key, from enrollment (0600) */
  sync: string;
  /** the hub's Ed25519 public key: what every package installed here must be signed with */
  hubKey: string;
}

export function dataPaths(dataDir: string): DataPaths {
  const root = resolve(dataDir);
  return {
    root,
    db: join(root, 'yachay.db'),
    store: join(root, 'store'),
    sources: join(root, 'sources'),
    uploads: join(root, 'uploads'),
    broker: join(root, 'broker'),
    setupToken: join(root, 'setup-token'),
    origin: join(root, 'origin'),
    sync: join(root, 'sync'),
    hubKey: join(root, 'sync', 'hub-key.pem'),
  };
}
