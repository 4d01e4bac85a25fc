import { describe, expect, it } from 'vitest';
import { metricSqlProblem } from '../../src/core/metricsql.js';
import { parseMetrics } from '../../src/cli/main.js';

describe('sql: metric check', () => {
  it('accepts one reading statement, a trailing ; and ; or function names inside strings and comments', () => {
    for (const q of [
      'SELECT count(*) FROM orders',
      'select count(*) from orders;',
      'WITH x AS (SELECT 1 AS n) SELECT n FROM x',
      '(SELECT 1)',
      'VALUES (1)',
      "SELECT count(*) FROM log WHERE msg = 'a; DROP TABLE x; pg_terminate_backend'",
      "SELECT count(*) FROM log WHERE msg = E'it\\'s; here'",
      'SELECT 1 -- ; COMMIT\n',
      'SELECT /* ; /* nested ; */ */ 1',
      'SELECT $$;$$::text IS NOT NULL::int',
      'SELECT count(*) FROM "Orders; x"',
    ])
      expect(metricSqlProblem(q), q).toBeNull();
  });
  it('refuses more than one statement, transaction control, and what is not a query', () => {
    expect(metricSqlProblem('SELECT 1; DELETE FROM customer')).toMatch(/more than one statement/);
    expect(metricSqlProblem('SELECT 1;;SELECT 2')).toMatch(/more than one statement/);
    expect(metricSqlProblem('COMMIT')).toMatch(/starts with "COMMIT"/);
    expect(metricSqlProblem('begin')).toMatch(/starts with "BEGIN"/);
    expect(metricSqlProblem('SET default_transaction_read_only = off')).toMatch(/starts with "SET"/);
    expect(metricSqlProblem("COPY (SELECT 1) TO PROGRAM 'touch /tmp/x'")).toMatch(/starts with "COPY"/);
    expect(metricSqlProblem('DELETE FROM customer RETURNING 1')).toMatch(/starts with "DELETE"/);
    expect(metricSqlProblem('   ;')).toMatch(/empty/);
    expect(metricSqlProblem("SELECT 'unterminated")).toMatch(/unterminated string/);
  });
  it('refuses functions that act outside a read-only query, however they are spelt', () => {
    expect(metricSqlProblem("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'app'")).toMatch(/pg_terminate_backend/);
    expect(metricSqlProblem('SELECT PG_CATALOG.Pg_Cancel_Backend(1)::int')).toMatch(/pg_cancel_backend/);
    expect(metricSqlProblem('SELECT "pg_terminate_backend"(1)::int')).toMatch(/pg_terminate_backend/);
    expect(metricSqlProblem('SELECT U&"\\0070g_terminate_backend"(1)::int')).toMatch(/U&/);
    expect(metricSqlProblem("SELECT length(set_config('default_transaction_read_only', 'off', false))")).toMatch(/set_config/);
    expect(metricSqlProblem('SELECT pg_advisory_lock(1)::text::int')).toMatch(/pg_advisory_lock/);
    expect(metricSqlProblem('SELECT lo_unlink(1)')).toMatch(/lo_unlink/);
    expect(metricSqlProblem("SELECT * FROM dblink('host=x', 'DELETE FROM t') AS t(n int)")).toMatch(/dblink/);
    expect(metricSqlProblem("SELECT length(pg_read_file('/etc/passwd'))")).toMatch(/pg_read_file/);
    expect(metricSqlProblem("SELECT length(query_to_xml('SELECT pg_reload_conf()', true, true, '')::text)")).toMatch(/query_to_xml/);
    expect(metricSqlProblem('SELECT pg_reload_conf()::int')).toMatch(/pg_reload_conf/);
  });
  it('instance set --metric refuses at set time what the probe would refuse', () => {
    expect(() => parseMetrics(['x=sql:SELECT 1; SELECT 2'])).toThrow(/metric x is refused: it holds more than one statement/);
    expect(() => parseMetrics(['x=sql:COMMIT'])).toThrow(/metric x is refused/);
    expect(() => parseMetrics(['x=sql:SELECT pg_terminate_backend(1)::int'])).toThrow(/pg_terminate_backend/);
    // A cmd: metric is a shell command: no SQL rules for it.
    expect(parseMetrics(['x=cmd:echo 1; echo 2'])).toEqual([{ name: 'x', kind: 'cmd', source: 'echo 1; echo 2' }]);
  });
});
