import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { migrate } from './migrations.js';
import type { Service } from '../service.js';
import { YachayError } from '../errors.js';

export type { Db };

/**
 * Opens the box's one SQLite file: WAL so readers (HTTP) never wait for the writer (worker),
 * synchronous=NORMAL (WAL keeps it crash-safe; only the last commits can be lost on power cut,
 * never corrupted), a busy timeout instead of SQLITE_BUSY errors, and migrations in code.
 */
export function openDb(path: string, opts: { check?: boolean } = {}): Db {
  mkdirSync(dirname(path), { recursive: true });
  // the box never leaves an empty file (a new one is created and migrated here at once): an
  // empty file is a truncated database, and starting on it would silently reset the school
  const size = fileSize(path);
  if (size === 0) {
    throw new YachayError('YCH_ERR_DATABASE', `database ${path} is an empty file (0 bytes): the users, lessons and jobs it held are gone from it`);
  }
  let db: Db;
  try {
    db = new Database(path);
  } catch (err) {
    throw new YachayError('YCH_ERR_IO', `cannot open database ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    // a box's database is a few MB: checking every page costs milliseconds at start, and finds a
    // damaged page before an upload half-writes into it
    if (opts.check !== false && size !== undefined) {
      const result = (db.pragma('quick_check', { simple: false }) as Array<{ quick_check: string }>).map((r) => r.quick_check);
      if (result[0] !== 'ok') throw new Error(`integrity check: ${result.slice(0, 3).join('; ')}`);
    }
    migrate(db);
  } catch (err) {
    db.close();
    const msg = (err as Error).message;
    if ((err as { code?: string }).code === 'SQLITE_NOTADB' || /not a database|malformed|integrity check|corrupt/i.test(msg)) {
      throw new YachayError('YCH_ERR_DATABASE', `database ${path} cannot be used: ${msg}`, { cause: err });
    }
    throw err;
  }
  // users' password hashes and sessions' state: readable by the box's user only, whatever the
  // umask of whoever started it (SQLite gives the -wal and -shm files the same mode)
  try { chmodSync(path, 0o600); } catch { /* a read-only mount: the check above already read it */ }
  return db;
}

function fileSize(path: string): number | undefined {
  try { return statSync(path).size; } catch { return undefined; }
}

export class DbService implements Service {
  readonly name = 'db';
  private handle: Db | undefined;
  constructor(private readonly path: string) {}

  get db(): Db {
    if (!this.handle) throw new Error('database used before start() or after stop()');
    return this.handle;
  }

  /** idempotent: the composition root opens the database first, to build the other services on it */
  async start(): Promise<void> {
    this.handle ??= openDb(this.path);
  }

  async stop(): Promise<void> {
    if (!this.handle) return;
    this.handle.close();
    this.handle = undefined;
  }

  healthy(): boolean {
    return this.handle?.open ?? false;
  }
}
