import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, addInstance, homeWithHosts } from '../helpers.js';

/** Drives the real program in a real terminal (tmux), as a person at a keyboard would. */
const session = `opsdeck-e2e-${process.pid}`;
const tmux = (...a: string[]) => execFileSync('tmux', a).toString();
const screen = () => tmux('capture-pane', '-p', '-t', session);
async function until(text: string | RegExp, ms = 20_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const s = screen();
    if (typeof text === 'string' ? s.includes(text) : text.test(s)) return s;
    if (Date.now() > end) throw new Error(`terminal never showed ${text}; screen:\n${s}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('opsdeck in a real terminal', () => {
  let home: string;
  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'term-a', 'dev');
    await addInstance(home, 'lab1', 'term-b', 'prod');
    // The shell prints opsdeck's exit status once it is gone, then waits, so the pane stays readable.
    tmux('new-session', '-d', '-s', session, '-x', '110', '-y', '28', `${BIN} --home ${home}; echo "opsdeck exited with $?"; sleep 60`);
  });
  afterAll(() => {
    try {
      tmux('kill-session', '-t', session);
    } catch {}
  });

  it('opens full screen, moves, opens an instance, goes back and quits', async () => {
    let s = await until('LAST BACKUP');
    expect(s).toContain('2 instances · 1 hosts');
    expect(s).toMatch(/q quit/);
    // Keys sent before Ink puts the terminal in raw mode are eaten by the line discipline: press j
    // until the selection (inverse video, seen with -e) is on term-b. Extra j's stop at the last row.
    const end0 = Date.now() + 10_000;
    for (;;) {
      tmux('send-keys', '-t', session, 'j');
      await new Promise((r) => setTimeout(r, 100));
      if (/\x1b\[7m[^\n]*term-b/.test(tmux('capture-pane', '-p', '-e', '-t', session))) break;
      if (Date.now() > end0) throw new Error('j never moved the selection');
    }
    tmux('send-keys', '-t', session, 'Enter');
    s = await until('Backups');
    expect(s).toMatch(/term-b PROTECTED/);
    tmux('send-keys', '-t', session, 'Escape');
    await until('LAST BACKUP');
    tmux('send-keys', '-t', session, '?');
    await until('Keys on the instances screen');
    tmux('send-keys', '-t', session, 'Escape');
    await until('LAST BACKUP');
    tmux('send-keys', '-t', session, 'q');
    await until('opsdeck exited with 0');
    // The alternate screen was left: the console's frame is gone from the terminal.
    expect(screen()).not.toContain('LAST BACKUP');
  });
});
