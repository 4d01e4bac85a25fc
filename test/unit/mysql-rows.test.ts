import { describe, expect, it } from 'vitest';
import { InsertCounter, LoadRewriter } from '../../src/databases/mysql-rows.js';

const DUMP = [
  'CREATE TABLE `actor` (',
  '  `id` int NOT NULL',
  ') ENGINE=InnoDB;',
  'CREATE TABLE `empty` (',
  '  `id` int',
  ');',
  '/*!50001 CREATE VIEW `v` AS SELECT 1 AS `x` */;',
  'INSERT INTO `actor` VALUES',
  "(1,'a (b)\\n(c)'),",
  "(2,'INSERT INTO `x` VALUES'),",
  "(3,'c');",
  'CREATE TABLE `we``ird` (`x` blob);',
  'INSERT INTO `we``ird` VALUES (0x28);',
  '',
].join('\n');

describe('rows per table of a mariadb-dump', () => {
  it('counts one row a line inside each INSERT (one-row INSERTs too), whatever the rows hold, and tables without rows as 0, however the dump is cut into chunks', () => {
    for (const size of [1, 3, 7, 64, DUMP.length]) {
      const c = new InsertCounter();
      const buf = Buffer.from(DUMP);
      for (let i = 0; i < buf.length; i += size) c.feed(buf.subarray(i, i + size));
      expect(c.tables).toEqual({ actor: 3, empty: 0, 'we`ird': 1 });
    }
  });
});

describe('a mariadb-dump on its way into a load', () => {
  const dump = [
    '/*!50001 CREATE ALGORITHM=UNDEFINED */',
    '/*!50013 DEFINER=`app`@`%` SQL SECURITY DEFINER */',
    '/*!50001 VIEW `v` AS select 1 AS `x` */;',
    'CREATE TABLE `t` (`s` text);',
    'INSERT INTO `t` VALUES',
    "('DEFINER=`x`@`y` stays in a row'),",
    "('ünïcödé ✓ across chunks');",
    'DELIMITER ;;',
    '/*!50003 CREATE*/ /*!50017 DEFINER=`app`@`%`*/ /*!50003 TRIGGER `tr` AFTER INSERT ON `t` FOR EACH ROW BEGIN',
    'INSERT INTO `t` VALUES (1);',
    'END */;;',
    'DELIMITER ;',
    'CREATE DEFINER=`app`@`%` PROCEDURE `p`() SELECT 1;',
    'INSERT INTO `t` VALUES (2);',
    '',
  ].join('\n');

  it('drops definers only where DDL starts, keeps rows byte for byte, has the server add up each INSERT, and counts nothing inside DELIMITER blocks, however the dump is cut', () => {
    const bytes = Buffer.from(dump);
    for (const size of [1, 2, 5, 64, bytes.length]) {
      const r = new LoadRewriter();
      const out: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) out.push(r.feed(bytes.subarray(i, i + size)));
      out.push(r.finish());
      const text = Buffer.concat(out).toString('utf8');
      expect(text).not.toMatch(/DEFINER=`app`/);
      expect(text).toContain("('DEFINER=`x`@`y` stays in a row'),\n('ünïcödé ✓ across chunks');\nSET @opsdeck_r0 = IFNULL(@opsdeck_r0, 0) + ROW_COUNT();\nDELIMITER ;;\n");
      // The INSERT inside the trigger's body is the trigger's: left as it is, not counted.
      expect(text).toContain('FOR EACH ROW BEGIN\nINSERT INTO `t` VALUES (1);\nEND */;;');
      expect(text).toContain('INSERT INTO `t` VALUES (2);\nSET @opsdeck_r0 = IFNULL(@opsdeck_r0, 0) + ROW_COUNT();\n');
      expect(text).toContain('/*!50013 SQL SECURITY DEFINER */');
      expect(text).toContain('CREATE PROCEDURE `p`()');
      expect(r.tables).toEqual({ t: 3 });
      expect(text).toMatch(/SELECT 'opsdeck-rows', 0, IFNULL\(@opsdeck_r0, 0\);\nSELECT 'opsdeck-table', HEX\(TABLE_NAME\)/);
    }
  });

  it("reads what the server took in from the client's output: a table short of rows, or one the dump does not make, never matches", () => {
    const r = new LoadRewriter();
    r.feed(Buffer.from('CREATE TABLE `a` (x int);\nINSERT INTO `a` VALUES (1);\nCREATE TABLE `b` (x int);\n'));
    r.finish();
    const hex = (s: string) => Buffer.from(s).toString('hex').toUpperCase();
    const out = ['opsdeck-rows\t0\t1', `opsdeck-table\t${hex('a')}`, `opsdeck-table\t${hex('b')}`, `opsdeck-table\t${hex('extra')}`].join('\n');
    const loaded = r.loaded(out);
    expect(loaded.get('a')).toBe(1);
    expect(loaded.get('b')).toBe(0);
    expect(loaded.get('extra')).toBeNaN();
    expect(r.loaded('opsdeck-rows\t0\t1\n').has('a')).toBe(false);
  });
});
