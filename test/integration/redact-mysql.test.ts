import { redactSuite } from './redact-suite.js';

// clone --redact on MariaDB (sakila); the same tests on PostgreSQL in redact.test.ts, which another worker runs meanwhile.

redactSuite('mysql');
