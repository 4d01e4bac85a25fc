import { describe, expect, it } from 'vitest';
import { addInstance, asLabUser, cli, homeWithHosts, must } from '../helpers.js';

describe('watch', () => {
  it('reports exactly what was added, changed, chmodded and deleted; --accept; opsdeck updates re-baseline', async () => {
    const home = await homeWithHosts(['lab1']);
    const i = await addInstance(home, 'lab1', 'watch-dev', 'dev');
    await must(cli(home, ['instance', 'set', 'watch-dev', '--branch', 'main', '--hook', 'migrate=bin/migrate']));
    const weird = 'lib/we ird;$(x).php';
    asLabUser('sh', ['-c', 'cd "$1" && mkdir -p cache lib && echo a > lib/a.php && echo b > lib/b.php && echo c > "$2" && echo tmp > cache/x', 'sh', i.path, weird]);

    const first = await cli(home, ['watch', 'watch-dev', '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ baselined: true });
    expect((await cli(home, ['watch', 'watch-dev'])).code).toBe(0);

    // An intruder: a new file, a changed one, a chmod, a deletion; and noise in an excluded cache.
    asLabUser('sh', ['-c', 'cd "$1" && echo "<?php evil();" > lib/shell.php && echo tampered >> lib/a.php && chmod 777 lib/b.php && rm "$2" && echo noise > cache/y', 'sh', i.path, weird]);
    const r = await cli(home, ['watch', 'watch-dev', '--json']);
    expect(r.code).toBe(1);
    const rep = JSON.parse(r.stdout);
    expect(rep.added).toEqual(['lib/shell.php']);
    expect(rep.removed).toEqual([weird]);
    expect(rep.changed).toEqual([
      { path: 'lib/a.php', what: ['content'] },
      { path: 'lib/b.php', what: ['mode 644 -> 777'] },
    ]);
    const text = (await cli(home, ['watch', 'watch-dev'])).stdout;
    expect(text).toMatch(/1 added, 2 changed, 1 removed/);
    expect(text).toContain('+ lib/shell.php');
    // The health panels and health show what the last check found.
    const h = JSON.parse((await cli(home, ['health', 'watch-dev', '--json'])).stdout).instances[0];
    expect(h.watch).toMatchObject({ changes: 4, checkedAt: expect.any(String) });
    expect(h.reasons).toContain('watch: 4 files differ from the baseline');

    await must(cli(home, ['watch', 'watch-dev', '--accept']));
    expect((await cli(home, ['watch', 'watch-dev'])).code).toBe(0);
    expect(JSON.parse((await cli(home, ['health', 'watch-dev', '--json'])).stdout).instances[0].watch.changes).toBe(0);

    // opsdeck's own change is not an intrusion.
    await must(cli(home, ['update', 'watch-dev', '--yes']));
    const after = await cli(home, ['watch', 'watch-dev', '--json']);
    expect(after.code, after.stdout).toBe(0);
    expect(JSON.parse(after.stdout)).toMatchObject({ added: [], removed: [], changed: [] });
  });
});
