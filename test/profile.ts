import { appendFileSync, readFileSync } from 'node:fs';
import { afterEach, beforeEach, expect } from 'vitest';

/**
 * Opt-in (OPSDECK_TEST_PROFILE=FILE): one JSON line per test with its wall time and the CPU it
 * cost this side of the lab: the worker's own, and that of the children it waited for (opsdeck,
 * restic, psql: /proc/self/stat's cutime and cstime). Wall well above CPU is time spent waiting,
 * on the lab (sshd, the databases, not counted here) or on a fixed grace period (issue 14).
 */
const out = process.env.OPSDECK_TEST_PROFILE;

/** CPU seconds of reaped children (cutime + cstime, fields 16 and 17 of /proc/self/stat). */
function childrenCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): cutime is field 16, cstime 17.
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

if (out) {
  let start = { wall: 0, own: process.cpuUsage(), children: 0 };
  beforeEach(() => {
    start = { wall: Date.now(), own: process.cpuUsage(), children: childrenCpu() };
  });
  afterEach(() => {
    const own = process.cpuUsage(start.own);
    const state = expect.getState();
    appendFileSync(
      out,
      JSON.stringify({
        file: state.testPath?.replace(`${process.cwd()}/`, ''),
        test: state.currentTestName,
        wallS: (Date.now() - start.wall) / 1000,
        workerCpuS: (own.user + own.system) / 1e6,
        childrenCpuS: Math.round((childrenCpu() - start.children) * 100) / 100,
      }) + '\n',
    );
  });
}
