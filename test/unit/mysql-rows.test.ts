import { describe, expect, it } from 'vitest';
import { InsertCounter } from '../../src/databases/mysql-rows.js';

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
