import { PassThrough, Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { labInfo } from '../../fixtures/lab.js';
import { makeLabMysqlInstance, mysqlAdmin, mysqlAs, mysqlDatabases, mysqlState, type LabMysqlInstance } from '../../fixtures/lab/mariadb.js';
import { LoadStopped, dbAt, type Db } from '../../src/databases/index.js';
import { dumpArgv, formatMysqlUrl, parseMysqlUrl, rowsPerTable, sql, type MysqlSession } from '../../src/databases/mysql.js';
import { mysqlEngine, restoreBySwap } from '../../src/databases/mysql-engine.js';
import { LocalShell } from '../../src/remote/local.js';
import { run } from '../../src/remote/shell.js';

const lab = labInfo();
const shell = new LocalShell();
const session = (i: LabMysqlInstance): MysqlSession => ({ shell, t: parseMysqlUrl(i.dbUrl), password: i.password });
const dbOf = (i: LabMysqlInstance): Db => dbAt(i.dbUrl, i.password);

async function dump(s: MysqlSession): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const out = new PassThrough();
  out.on('data', (c: Buffer) => chunks.push(c));
  await run(s.shell, dumpArgv(s.t), { secretLine: s.password, stdout: out });
  return Buffer.concat(chunks);
}

/** Changes of every kind an app makes between a backup and its restore. */
function changeEverything(i: LabMysqlInstance): void {
  mysqlAs(
    i.user,
    i.password,
    `DELETE FROM payment WHERE payment_id > 16000;
INSERT INTO actor (first_name, last_name) VALUES ('NEW', 'ACTOR');
UPDATE film SET title = 'CHANGED' WHERE film_id = 1;
DROP VIEW customer_list;
DROP TRIGGER del_film;
DROP PROCEDURE film_in_stock;
CREATE TABLE added_since (id int PRIMARY KEY);
CREATE VIEW added_view AS SELECT id FROM added_since;`,
    i.db,
  );
}

describe.skipIf(!lab.mysql)('MariaDB: a restore loads beside the database and swaps every table in at once', () => {
  let prod: LabMysqlInstance;
  let backup: Buffer;
  let rows: Record<string, number>;
  let before: Record<string, string>;
  beforeAll(async () => {
    prod = makeLabMysqlInstance(lab, 'lab1', 'mswap', { sakila: true });
    before = mysqlState(prod.db);
    backup = await dump(session(prod));
    rows = Object.fromEntries(await rowsPerTable(session(prod), prod.db));
  });

  it('round-trips Sakila exactly: schema with views, routines and triggers, rows, AUTO_INCREMENT, checksums; undo swaps back exactly', async () => {
    expect(Number(before['rows rental'])).toBe(16044);
    expect(before.schema).toMatch(/DEFINER=`m_mswap`@`127.0.0.1`\*\/ \/\*!50003 TRIGGER `ins_film`/);
    expect(before.schema).toMatch(/VIEW `customer_list`/);
    changeEverything(prod);
    const changed = mysqlState(prod.db);
    expect(changed).not.toEqual(before);
    const kept = await restoreBySwap(shell, dbOf(prod), Readable.from([backup]), rows);
    expect(mysqlState(prod.db)).toEqual(before);
    // The triggers fire again on the swapped-in tables.
    mysqlAs(prod.user, prod.password, "INSERT INTO film (title, language_id) VALUES ('TRIGGERED', 1);", prod.db);
    expect(mysqlAs(prod.user, prod.password, "SELECT COUNT(*) FROM film_text WHERE title = 'TRIGGERED';", prod.db).trim()).toBe('1');
    mysqlAs(prod.user, prod.password, "DELETE FROM film WHERE title = 'TRIGGERED'; ALTER TABLE film AUTO_INCREMENT = 1001;", prod.db);
    expect(mysqlState(prod.db)).toEqual(before);
    // The old tables are kept beside until the run is done: the undo swaps them back.
    expect(mysqlDatabases(`${prod.db}_opsdeck_`)).toEqual([`${prod.db}_opsdeck_${(JSON.parse(kept) as { runId: string }).runId}_old`]);
    await mysqlEngine.putBack(shell, dbOf(prod), kept);
    expect(mysqlState(prod.db)).toEqual(changed);
    expect(mysqlDatabases(`${prod.db}_opsdeck_`)).toEqual([]);
    // Again, and this time the run ends: the old tables are dropped.
    const kept2 = await restoreBySwap(shell, dbOf(prod), Readable.from([backup]), rows);
    await mysqlEngine.dropKept(shell, dbOf(prod), kept2);
    expect(mysqlState(prod.db)).toEqual(before);
    expect(mysqlDatabases(`${prod.db}_opsdeck_`)).toEqual([]);
  });

  const text = () => backup.toString('utf8');
  const faults: [string, () => Buffer][] = [
    ['a dump cut short half-way', () => backup.subarray(0, Math.floor(backup.length / 2))],
    ['a dump cut at a statement boundary (rows missing)', () => Buffer.from(text().slice(0, text().indexOf('\nINSERT INTO `rental`')))],
    ['a tampered dump (a row taken out of an INSERT)', () => Buffer.from(text().replace(/(INSERT INTO `payment` VALUES\n)\([^\n]*\n/, '$1'))],
    ['a bad statement in the middle', () => Buffer.from(text().replace('\nINSERT INTO `rental`', '\nINSERT INTO no_such_table VALUES (1);\nINSERT INTO `rental`'))],
  ];
  it.each(faults)('%s leaves the database exactly as before and no swap database behind', async (_what, bad) => {
    const now = mysqlState(prod.db);
    // LoadStopped: what the restore's undo takes for "the database was not changed".
    await expect(restoreBySwap(shell, dbOf(prod), Readable.from([bad()]), rows)).rejects.toBeInstanceOf(LoadStopped);
    expect(mysqlState(prod.db)).toEqual(now);
    expect(mysqlDatabases(`${prod.db}_opsdeck_`)).toEqual([]);
  });

  it('an account without rights on the databases beside is refused before anything changes, the grant named', async () => {
    const small = makeLabMysqlInstance(lab, 'lab1', 'mnorights', { grants: 'database-only' });
    mysqlAs(small.user, small.password, 'CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);', small.db);
    const now = mysqlState(small.db);
    const err = await restoreBySwap(shell, dbOf(small), Readable.from([backup]), rows).catch((e: Error) => e);
    expect(String(err)).toMatch(/lacks .*CREATE.* on m_mnorights_opsdeck_[0-9a-f]+_new.*GRANT ALL ON `m\\_mnorights\\_opsdeck\\_%`/);
    expect(mysqlState(small.db)).toEqual(now);
    expect(mysqlDatabases(`${small.db}_opsdeck_`)).toEqual([]);
  });

  it('passwords with quotes, #, backslashes and spaces reach the client through the option file, never argv', async () => {
    const s = session(prod);
    const pw = `a"b#c\\d e$f\``;
    mysqlAdmin(`ALTER USER ${'`'}${prod.user}${'`'}@'127.0.0.1' IDENTIFIED BY '${pw.replace(/\\/g, '\\\\')}';`);
    try {
      expect((await sql({ ...s, password: pw }, 'SELECT CURRENT_USER();')).trim()).toBe(`${prod.user}@127.0.0.1`);
      expect(dumpArgv(s.t).join(' ')).not.toContain(pw);
    } finally {
      mysqlAdmin(`ALTER USER ${'`'}${prod.user}${'`'}@'127.0.0.1' IDENTIFIED BY '${prod.password}';`);
    }
  });
});

describe('mysql:// and mariadb:// URLs', () => {
  it('parses and formats them, with the refusals of postgres URLs', () => {
    expect(parseMysqlUrl('mariadb://shop@db1:3307/shop')).toEqual({ kind: 'mysql', user: 'shop', host: 'db1', port: 3307, database: 'shop' });
    expect(formatMysqlUrl(parseMysqlUrl('mysql://shop@[::1]/shop'))).toBe('mysql://shop@[::1]:3306/shop');
    expect(() => parseMysqlUrl('mysql://shop:secret@db1/shop')).toThrow(/password/);
    expect(() => parseMysqlUrl('mysql://shop@db1/shop?ssl=1')).toThrow(/parameters/);
    expect(() => parseMysqlUrl('mysql://shop@db1/sh%60op')).toThrow(/invalid database name/);
    expect(() => parseMysqlUrl('postgres://shop@db1/shop')).toThrow(/unsupported/);
  });
});
