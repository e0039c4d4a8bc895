// aedes-persistence-level ships no types. It exports one factory: give it a level database
// (we pass `new Level(dir)`), get an Aedes persistence back.
declare module 'aedes-persistence-level' {
  import type { Level } from 'level';

  /** The Aedes persistence interface is large and untyped upstream; we only hand it to Aedes. */
  export interface LevelPersistence {
    /** closes the database it was given */
    destroy(): Promise<void>;
    /** keeps (or, for an empty payload, deletes) a retained message; the broker wraps it to log failures */
    storeRetained(packet: { topic: string; payload: Buffer }): Promise<void>;
  }

  export default function levelPersistence(db: Level<any, any>): LevelPersistence;
}
