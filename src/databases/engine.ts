/**
 * What a database engine offers the operations, in their words: back up, load so that nothing
 * changes unless the whole dump arrived, compare, count, probe. One module per engine implements it
 * (postgres-engine.ts); index.ts picks one by the URL's scheme. Nothing outside src/databases/
 * knows which engine an instance uses: it holds a Db and calls db.engine.
 */
import type { Duplex, Readable } from 'node:stream';
import type { Manifest } from '../../inventory/index.js';
import { CommandError, type Shell } from '../remote/shell.js';

/** The engine a backup's dump belongs to, as its manifest records it. */
export type DbKind = NonNullable<Manifest['db']>['kind'];

/**
 * A parsed database URL. The rest of opsdeck passes it around without looking inside: user, host,
 * port and database may be read for messages; `kind` only inside src/databases/.
 */
export interface DbTarget {
  readonly kind: DbKind;
  readonly user: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
}

/** One instance's database: its engine, where it is, and the password of its role. */
export interface Db {
  readonly engine: DbEngine;
  readonly target: DbTarget;
  readonly password: string;
}

/** Rows per table of a dump, counted as it streams by (backup records them, verify checks them). */
export interface DumpRowCounter {
  feed(chunk: Buffer): void;
  readonly tables: Record<string, number>;
}

/** Where a dump comes from, for its loader: the engine that wrote it and the role it was taken as. */
export interface DumpSource {
  kind: DbKind;
  /** The role the dump was taken as (the owner of what it holds); undefined when not known. */
  role: string | undefined;
  /** Rows per table the dump holds, when known (a stored backup's manifest), for a load that checks them before it commits. */
  tables?: Record<string, number>;
  /**
   * SQL statements (clone --redact) run on the loaded copy before it replaces anything: PostgreSQL
   * inside the load's transaction before its COMMIT, MariaDB in the scratch database before the swap.
   */
  redact?: string[];
}

/**
 * One load of a dump into a database, driven by the caller's relay:
 *   write head, then each chunk of the dump through feed(); once the dump passed whole and its
 *   checksum matched, write finish(); once the caller lets it commit, write commit and end the input.
 * run() reads that input on the host and resolves once what it loaded is in place. A dump cut short
 * (the input destroyed, or ended without `commit`) never replaces anything.
 * PostgreSQL: psql in one transaction, emptied first (head), COMMIT last.
 */
export interface DbLoader {
  /** Written into the load's input before the dump. */
  readonly head: string;
  /** Maps a chunk of the dump on its way in (the caller hashes the dump's own bytes before). */
  feed(chunk: Buffer): Buffer;
  /** Written once the whole dump passed and matched, before the commit is let go. */
  finish(): Buffer | string;
  /** The input's last bytes, written once the caller lets the load commit. */
  readonly commit: string;
  /**
   * Runs the load, reading `input` until it ends. Rejects with LoadStopped when the load stopped
   * before its commit (nothing changed), with another error when that is not known. An engine that
   * keeps things aside tells `keep` what an undo needs (what kept() will say) as soon as it is known
   * and again before the target's first change, awaiting it: a caller that records it can still
   * undo the load from that record after a crash (opsdeck recover).
   */
  run(input: Readable, signal: AbortSignal, keep?: (kept: string) => Promise<void>): Promise<void>;
  /** How it loaded, for the run log ("in one transaction"). */
  readonly how: string;
  /** What the load could not give back as the source had it (owners, grants), for the run log. */
  notes(): string[];
  /** Said once before the load, for the run log (whose objects become whose). */
  readonly before: string[];
  /**
   * After run() resolved: what an undo needs to put back the data this load replaced without the
   * safety backup, as plain data a run's state can keep (an engine that swaps keeps the old tables
   * aside and says where). Undefined: nothing kept, an undo loads the safety backup again.
   */
  kept(): string | undefined;
}

/** Why a database login failed, in words the caller turns into advice. */
export interface AccessProblem {
  /** The client's own last line. */
  why: string;
  cause: 'password' | 'names' | 'no-client' | 'rights' | 'unreachable';
}

/** A database's health: size, connections, the longest transaction, replication, app metrics. */
export interface DbHealth {
  ok: boolean;
  reason?: string;
  ms: number;
  sizeBytes?: number;
  /** Client connections to the whole server, against its max_connections. */
  connections?: number;
  maxConnections?: number;
  /** The oldest open transaction of any other session, in seconds; null when none is open. */
  longestTransactionSeconds?: number | null;
  /** On a primary with replicas: their count and worst replay lag; on a replica: how far behind it is. */
  replication?: { role: 'primary' | 'replica'; replicas: number; lagSeconds: number | null };
  /** App metrics by name: the number, or why it could not be read. */
  metrics?: Record<string, number | { error: string }>;
}

/** Why a redaction rule could act outside the copy it redacts, and what to write instead. */
export interface RedactionProblem {
  why: string;
  fix: string;
}

/** Rows and an order-independent checksum of one table, for compare. */
export interface TableDigest {
  rows: number;
  sum: string;
}

/**
 * What an engine implements. Commands run through the Shell given (the instance's host, as the
 * caller chooses); passwords reach them on stdin, never in argv.
 */
export interface DbEngine {
  /** What backups' manifests record (and DbTarget.kind holds). */
  readonly kind: DbKind;
  /** The product, for messages: "PostgreSQL". */
  readonly name: string;
  /** URL schemes it answers to, without the colon; format() writes the first. */
  readonly schemes: readonly string[];
  /** The URL's form, for hints: "postgres://ROLE@HOST:PORT/DB". */
  readonly urlForm: string;
  /** Its command-line client, for hints: "the PostgreSQL client (psql)". */
  readonly client: string;
  /** How a restore loads the database, for a plan's explanation: "loads the database in one transaction (...)". */
  readonly loadWords: string;
  /**
   * Its load goes beside the target and changes nothing of it before the caller's go-ahead (the
   * commit): it may run while the safety backup still reads the target. False: it replaces in place
   * (PostgreSQL's one transaction), so the safety backup comes first.
   */
  readonly loadsBeside: boolean;

  /** Parses a URL of one of its schemes; a password or connection parameters in it are refused. */
  parse(url: string): DbTarget;
  /** The URL as the inventory keeps it. */
  format(t: DbTarget): string;

  /** Logs in as every later action will and checks what they need; undefined when all is well. */
  checkAccess(shell: Shell, db: Db, timeoutMs: number): Promise<AccessProblem | undefined>;
  /** Before anything changes: refuses (an OpsError saying why and what to grant) a load the role could not complete. */
  checkLoad(shell: Shell, db: Db, signal?: AbortSignal): Promise<void>;

  /** The whole database as one stream on stdout; the password is the first line of stdin. */
  dumpArgv(t: DbTarget): string[];
  /** Counts rows per table of one of its dumps as it streams by. */
  rowCounter(): DumpRowCounter;
  /** Prepares one load into `db` (reads what it needs there first; changes nothing). */
  loader(shell: Shell, db: Db, from: DumpSource, signal?: AbortSignal): Promise<DbLoader>;
  /** Puts back what a load replaced, from what its loader kept (an undo). */
  putBack(shell: Shell, db: Db, kept: string): Promise<void>;
  /** Whether what a load kept is there whole, so putBack gives the database back exactly (else: the safety backup). */
  canPutBack(shell: Shell, db: Db, kept: string): Promise<boolean>;
  /** Drops what a load kept for its undo, once the run no longer needs it. */
  dropKept(shell: Shell, db: Db, kept: string): Promise<void>;

  /** The schema as text, without what differs between any two dumps of the same schema. */
  schema(shell: Shell, db: Db): Promise<string>;
  /** Every table's rows and an order-independent checksum of them, by table name as dumps name it. */
  tableDigests(shell: Shell, db: Db): Promise<Map<string, TableDigest>>;
  /** The rows of each table named (as the dump's row counter names them). */
  countRows(shell: Shell, db: Db, tables: string[]): Promise<Map<string, number>>;

  /** Whether the database exists and holds nothing of the app's yet. */
  emptiness(shell: Shell, db: Db): Promise<'empty' | 'not-empty' | 'missing'>;
  /** Creates the database, owned by the instance's role. */
  createDatabase(shell: Shell, db: Db): Promise<void>;
  /** Drops the database (if it exists), ending its sessions. */
  dropDatabase(shell: Shell, db: Db): Promise<void>;

  /** The variables a hook gets to reach the database, and the one that carries the password (from stdin). */
  hookEnv(t: DbTarget): { env: string[]; passwordVar: string };

  /**
   * Health and the instance's read-only `sql:` metrics over a stream to the server the caller opens
   * (a tunnel on the host's SSH connection to target.host:target.port).
   */
  probe(db: Db, stream: () => Duplex, sqlMetrics: { name: string; query: string }[], timeoutMs: number): Promise<DbHealth>;
  /** Why probe() would refuse this `sql:` metric on this engine, or null: asked when it is set, too. */
  metricProblem(query: string): string | null;
  /**
   * Why this engine's load would let a redaction statement (one, ending with ;) act outside the copy
   * it redacts, or null: clone and refresh ask before a run starts, `instance set --redact` before it
   * stores rules. `databases`: the other databases known on the server (the inventory's instances').
   */
  redactionProblem(statement: string, databases: ReadonlySet<string>): RedactionProblem | null;
}

/** The load stopped at a failed statement, before its commit: the database is as it was. */
export class LoadStopped extends CommandError {}
