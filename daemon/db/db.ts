import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
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
export function openDb(path: string): Db {
  mkdirSync(dirname(path), { recursive: true });
  let db: Db;
  try {
    db = new Database(path);
  } catch (err) {
    throw new YachayError('YCH_ERR_IO', `cannot open database ${path}: ${(err as Error).message}`, { cause: err });
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
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
