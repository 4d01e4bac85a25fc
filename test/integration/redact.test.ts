import { redactSuite } from './redact-suite.js';

// clone --redact on PostgreSQL (pagila); the same tests on MariaDB in redact-mysql.test.ts, which another worker runs meanwhile.

redactSuite('postgres');
