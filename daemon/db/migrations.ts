import type { Database as Db } from 'better-sqlite3';

/**
 * Ordered schema changes; PRAGMA user_version records how many ran. Append only: a shipped
 * migration is never edited, because boxes in the field already ran it.
 */
const MIGRATIONS: string[] = [
  // 1: lessons, the durable job queue, users, byte accounting
  `
  CREATE TABLE lessons (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    source TEXT,
    error TEXT,
    duration_s REAL,
    -- folder of the published package, relative to the content store
    path TEXT,
    renditions_json TEXT,
    report_json TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'leased', 'done', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_after INTEGER NOT NULL,
    lease_until INTEGER,
    leased_by TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX jobs_ready ON jobs (state, run_after);
  CREATE TABLE users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'teacher', 'device')),
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE byte_counts (
    lesson_id TEXT NOT NULL,
    rendition TEXT NOT NULL,
    bytes INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (lesson_id, rendition)
  );
  `,
  // 2: every encode the optimizer ran, with its features and measured quality (the rate
  // model's training data, issue 4)
  `
  CREATE TABLE encodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lesson_id TEXT,
    shot_class TEXT NOT NULL,
    features_json TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    quality_json TEXT NOT NULL,
    bytes INTEGER,
    created_at INTEGER NOT NULL
  );
  `,
  // 3: the rate model's registry (every trained version, why it was kept or refused) and the
  // shot each encode came from; a NULL shot_index is a row recorded before this migration
  `
  ALTER TABLE encodes ADD COLUMN source TEXT;
  ALTER TABLE encodes ADD COLUMN shot_index INTEGER;
  CREATE INDEX encodes_lesson ON encodes (lesson_id);
  CREATE TABLE model_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    -- where the file was installed in the data folder, and its bytes (a few KB), so a rollback
    -- works even when the file was deleted
    file TEXT,
    blob BLOB,
    sha256 TEXT,
    metrics_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'retired', 'rejected')),
    parent INTEGER REFERENCES model_versions (id),
    created_at INTEGER NOT NULL,
    UNIQUE (model, version)
  );
  CREATE UNIQUE INDEX model_versions_one_active ON model_versions (model) WHERE status = 'active';
  `,
  // 4: the parts of a published lesson still under their quality floor after every attempt
  // (issue 8): the lesson is published anyway and the teacher is told where. NULL: none, or
  // published before this migration
  `
  ALTER TABLE lessons ADD COLUMN misses_json TEXT;
  `,
  // 5: lessons that came from elsewhere (issue 9): the hub's sync, a USB drive, a peer box. A
  // synced lesson may be evicted for space, least played first; a teacher's upload ('local') never
  `
  ALTER TABLE lessons ADD COLUMN origin TEXT NOT NULL DEFAULT 'local' CHECK (origin IN ('local', 'hub', 'import', 'peer'));
  ALTER TABLE lessons ADD COLUMN channel TEXT;
  ALTER TABLE lessons ADD COLUMN version INTEGER;
  ALTER TABLE lessons ADD COLUMN plays INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE lessons ADD COLUMN last_played_at INTEGER;
  `,
  // 6: the edge's side of the sync (issue 9). sync_outbox holds up-messages for the hub until
  // its broker acknowledges them (PUBACK), through power cuts and weeks offline; kind says what
  // may be dropped when it is full (telemetry first, acks/reports/requests never). hub_catalog
  // is the last known retained catalog and assignments, served while the hub is unreachable.
  `
  CREATE TABLE sync_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL CHECK (kind IN ('telemetry', 'other', 'keep')),
    bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX sync_outbox_kind ON sync_outbox (kind, id);
  CREATE TABLE hub_catalog (
    topic TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('catalog', 'assign')),
    lesson_id TEXT NOT NULL,
    channel TEXT,
    version INTEGER NOT NULL,
    payload TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX hub_catalog_lesson ON hub_catalog (lesson_id);
  CREATE TABLE sync_requests (
    lesson_id TEXT PRIMARY KEY,
    by TEXT,
    at INTEGER NOT NULL
  );
  CREATE TABLE sync_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  // 7: what students and teachers said about a lesson's picture and voice (issue 13 item 3).
  // No user, no device: a row says which shot of which package, seen in which rendition, was
  // fine or not. job_id: the re-encode that answered a "bad" (NULL: not acted on yet)
  `
  CREATE TABLE feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lesson_id TEXT NOT NULL,
    version INTEGER,
    shot_index INTEGER NOT NULL,
    rendition TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('text', 'voice')),
    answer TEXT NOT NULL CHECK (answer IN ('ok', 'bad')),
    source TEXT NOT NULL CHECK (source IN ('student', 'teacher')),
    at INTEGER NOT NULL,
    job_id INTEGER
  );
  CREATE INDEX feedback_lesson ON feedback (lesson_id, shot_index);
  `,
];

export function migrate(db: Db): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this program (${MIGRATIONS.length}): update Yachay`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return MIGRATIONS.length;
}
