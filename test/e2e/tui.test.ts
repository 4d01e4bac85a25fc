import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, TEAM_ADMIN, addInstance, homeWithHosts } from '../helpers.js';

/** Drives the real program in a real terminal (tmux), as a person at a keyboard would. */
const session = `opsdeck-e2e-${process.pid}`;
const tmux = (...a: string[]) => execFileSync('tmux', a).toString();
/** What a tmux session's pane shows now. */
const paneOf = (name: string) => () => tmux('capture-pane', '-p', '-t', name);
/** Waits until a session's pane shows `text`; the pane then, or an error that shows it. */
const waiterOf =
  (name: string) =>
  async (text: string | RegExp, ms = 20_000): Promise<string> => {
    const end = Date.now() + ms;
    for (;;) {
      const s = paneOf(name)();
      if (typeof text === 'string' ? s.includes(text) : text.test(s)) return s;
      if (Date.now() > end) throw new Error(`terminal never showed ${text}; screen:\n${s}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
const screen = paneOf(session);
const until = waiterOf(session);

describe('opsdeck in a real terminal', () => {
  let home: string;
  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'term-a', 'dev');
    await addInstance(home, 'lab1', 'term-b', 'prod');
    // The shell prints opsdeck's exit status once it is gone, then waits, so the pane stays readable.
    tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '32', `${BIN} --home ${home}; echo "opsdeck exited with $?"; sleep 60`);
  });
  afterAll(() => {
    try {
      tmux('kill-session', '-t', session);
    } catch {}
  });

  it('opens on the live dashboard, filters by environment and text, drills into an instance and a host, and quits', async () => {
    let s = await until(/lab1\s+up\s+\d+\.\d\d/);
    expect(s).toContain('2 instances · 1 hosts');
    expect(s).toMatch(/HOSTS[\s\S]*INSTANCES[\s\S]*DATABASES/);
    expect(s).toMatch(/q quit/);
    s = await until(/term-a\s+dev\s+\S+\s+200 \d+ms/);
    // Keys sent before Ink puts the terminal in raw mode are eaten by the line discipline: press e
    // until the environment filter shows.
    const end0 = Date.now() + 10_000;
    for (;;) {
      tmux('send-keys', '-t', session, 'e');
      await new Promise((r) => setTimeout(r, 150));
      if (screen().includes('env dev')) break;
      if (Date.now() > end0) throw new Error('e never changed the environment filter');
    }
    s = await until(/term-a\s+dev/);
    expect(s).not.toContain('term-b');
    // Back to every environment (dev, prod, all), then a text filter typed as you go.
    tmux('send-keys', '-t', session, 'e');
    await until('env prod');
    tmux('send-keys', '-t', session, 'e');
    await until(/term-b\s+prod\*/);
    tmux('send-keys', '-t', session, '/', 'term-b');
    s = await until('filter "term-b"');
    expect(s).not.toMatch(/term-a\s+dev/);
    tmux('send-keys', '-t', session, 'Enter');
    await new Promise((r) => setTimeout(r, 100));
    // Enter opens the selected instance: the only one left, term-b.
    tmux('send-keys', '-t', session, 'Enter');
    s = await until('Backups');
    expect(s).toMatch(/term-b PROTECTED/);
    // Its site and database answer; it has never been backed up, which is its one problem.
    s = await until(/health\s+PROBLEM: no backup\s+http 200 \d+ ms.*db [\d.]+ [KMG]B, \d+\/\d+ conns/);
    tmux('send-keys', '-t', session, 'Escape');
    await until('DATABASES');
    tmux('send-keys', '-t', session, 'Escape'); // clears the filter
    await until(/term-a\s+dev/);
    // Tab twice reaches the hosts panel; Enter opens lab1.
    tmux('send-keys', '-t', session, 'Tab');
    await new Promise((r) => setTimeout(r, 100));
    tmux('send-keys', '-t', session, 'Tab');
    await new Promise((r) => setTimeout(r, 100));
    tmux('send-keys', '-t', session, 'Enter');
    s = await until('Instances on lab1');
    expect(s).toMatch(/memory\s+[\d.]+ [KMG]B of/);
    tmux('send-keys', '-t', session, 'Escape');
    await until('DATABASES');
    tmux('send-keys', '-t', session, '?');
    await until('Keys on the dashboard screen');
    tmux('send-keys', '-t', session, 'Escape');
    await until('DATABASES');
    tmux('send-keys', '-t', session, 'q');
    await until('opsdeck exited with 0');
    // The alternate screen was left: the console's frame is gone from the terminal.
    expect(screen()).not.toContain('DATABASES');
  });
});

describe('opsdeck in an 80x24 terminal, as on many jump boxes', () => {
  const narrow = `opsdeck-e2e-80-${process.pid}`;
  const keys = (...k: string[]) => execFileSync('tmux', ['send-keys', '-t', narrow, ...k]);
  const show = waiterOf(narrow);
  let home: string;
  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'narrow-a', 'dev');
    await addInstance(home, 'lab1', 'narrow-b', 'prod');
    execFileSync(BIN, ['--home', home, 'backup', 'narrow-a'], { env: { ...process.env, OPSDECK_KNOWN_HOSTS: '' }, stdio: 'ignore' });
    execFileSync('tmux', ['new-session', '-d', '-s', narrow, '-x', '80', '-y', '24', `${BIN} --home ${home}; echo "opsdeck exited with $?"; sleep 60`]);
  });
  afterAll(() => {
    try {
      execFileSync('tmux', ['kill-session', '-t', narrow]);
    } catch {}
  });

  it('keeps the state and the reason of a bad row, and the instance view and drill wizard read whole', async () => {
    // The reason comes before the sparklines and lesser columns: an on-call person sees why. Each
    // probe's result is drawn as it comes (the instance's may come before its host's): both awaited.
    await show(/lab1\s+up\s/);
    const s = await show(/narrow-b\s+prod\*\s+PROBLEM\s.*no backup/);
    for (const line of s.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    expect(s).toMatch(/lab1\s+up\s/);
    expect(s).toContain('q quit');
    // The instance view of the one with a backup: its health and its backup listed.
    // The rows are live by now, so the terminal is in raw mode and no key is eaten.
    keys('/');
    await show('done typing');
    keys('narrow-a', 'Enter');
    await new Promise((r) => setTimeout(r, 100));
    keys('Enter');
    const inst = await show(/Backups[\s\S]*\d{8}T\d{6}-[0-9a-f]{4}/);
    expect(inst).toMatch(/narrow-a/);
    expect(inst).toMatch(/health\s+ok/);
    // The drill wizard's first step: its words and the backup to pick fit the terminal.
    keys('D');
    const d = await show('Step 1 of 3: pick a backup.');
    expect(d).toMatch(/\d{8}T\d{6}-[0-9a-f]{4}/);
    expect(d).toContain('esc');
    for (const line of d.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
  });
});

describe('opsdeck on a team inventory, its password typed at the prompt', () => {
  const team = `opsdeck-e2e-team-${process.pid}`;
  const show = waiterOf(team);
  afterAll(() => {
    try {
      execFileSync('tmux', ['kill-session', '-t', team]);
    } catch {}
  });

  it('asks for the password without echoing it, then opens on the shared inventory; a wrong one is refused in words', async () => {
    const home = await homeWithHosts(['lab1'], 'postgres');
    await addInstance(home, 'lab1', 'team-term', 'dev');
    // No password in the environment and no ~/.pgpass (HOME elsewhere): the console has to ask.
    const bare = mkdtempSync(join(tmpdir(), 'opsdeck-nopgpass-'));
    const run = `env -u OPSDECK_INVENTORY_PASSWORD HOME=${bare} ${BIN} --home ${home}; echo "opsdeck exited with $?"; sleep 60`;
    execFileSync('tmux', ['new-session', '-d', '-s', team, '-x', '120', '-y', '32', run]);
    await show(`password of inventory role ${TEAM_ADMIN.role}`);
    execFileSync('tmux', ['send-keys', '-t', team, '-l', TEAM_ADMIN.password]);
    execFileSync('tmux', ['send-keys', '-t', team, 'Enter']);
    const s = await show(/team-term\s+dev/);
    expect(s).not.toContain(TEAM_ADMIN.password);
    execFileSync('tmux', ['send-keys', '-t', team, 'q']);
    await show('opsdeck exited with 0');
    execFileSync('tmux', ['kill-session', '-t', team]);

    execFileSync('tmux', ['new-session', '-d', '-s', team, '-x', '120', '-y', '32', run]);
    await show(`password of inventory role ${TEAM_ADMIN.role}`);
    execFileSync('tmux', ['send-keys', '-t', team, '-l', 'not-the-password']);
    execFileSync('tmux', ['send-keys', '-t', team, 'Enter']);
    const bad = await show(/opsdeck exited with [1-9]/);
    expect(bad).toMatch(/password authentication failed|password/i);
    expect(bad).not.toContain('not-the-password');
  });
});
