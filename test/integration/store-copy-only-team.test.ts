import { copyOnlySuite } from './copy-only.js';

// copy-only.ts's tests on a team inventory (PostgreSQL): a file of its own, so a second worker runs
// them beside the SQLite ones in store-copy-only.test.ts.

copyOnlySuite('postgres');
