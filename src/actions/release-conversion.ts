import { basename } from 'node:path';
import type { Instance } from '../../inventory/index.js';
import type { StepIO } from '../core/plan.js';
import { OpsError, UsageError } from '../core/errors.js';
import { run } from '../remote/shell.js';
import { shellFor, type Deps } from '../deps/deps.js';
import { liveRelease, RELEASE_ID, releaseId, releasesDir, schemaHash, sh, sharedDir, sharedLinkTarget, sharedPathsOf, writeReleaseMeta } from './releases.js';
import { refuseRestoreLeftovers } from './release-restore.js';

/**
 * What a conversion did (or was about to do), so its undo puts exactly that back. Each step is added
 * before it runs and every undo command checks what is there, so a conversion cut short anywhere is
 * undone by the same code: in the run (the step's own undo), or from the journal on the host.
 */
export interface Conversion {
  id: string;
  /** Shared paths moved out of the tree into shared/ (a link left in their place). */
  moved: string[];
  /** Shared paths the tree did not have: made empty in shared/ (directories) and linked. */
  made: string[];
}

/** The journal of a conversion under way on the host: removed once it is whole, read by the next run. */
export const conversionJournal = (path: string) => `${releasesDir(path)}/.converting`;

/**
 * Turns an in-place instance into release mode: its directory becomes the first release, its
 * shared paths move to shared/ with links in their place, and the path becomes a link to it. Two
 * renames (the directory away, the link in): no rename puts a link over a directory in one step.
 * What it did is filled in as it goes (`started`): when a step fails the caller's undo (undoConversion) finds each step
 * that may have run, and a journal on the host says the same to the next run if this one is killed.
 */
export async function convertToReleases(deps: Deps, inst: Instance, revision: string, ctx: StepIO, started?: (conv: Conversion) => void): Promise<Conversion> {
  const rel = releasesDir(inst.path);
  const shared = sharedDir(inst.path);
  const there = await shellFor(deps, inst).exec(['sh', '-c', 'for p in "$@"; do if [ -e "$p" ] || [ -L "$p" ]; then printf "%s\\n" "$p"; fi; done', 'sh', rel, shared]);
  if (there.stdout.trim()) throw new UsageError(`${there.stdout.trim().split('\n').join(' and ')} already exist on ${inst.host}`, 'move them away first: the first update in release mode makes them');
  // Handed over before the first change (and only once nothing refused it): the caller's undo then
  // sees each step as it is added.
  const conv: Conversion = { id: releaseId(revision, []), moved: [], made: [] };
  started?.(conv);
  const { id } = conv;
  const journal = (c: Conversion) => run(shellFor(deps, inst), ['sh', '-c', 'cat > "$1.tmp" && mv -f -- "$1.tmp" "$1"', 'sh', conversionJournal(inst.path)], { stdin: JSON.stringify(c) + '\n' });
  await sh(deps, inst, 'mkdir -- "$1" "$2"', [rel, shared], ctx.signal);
  await journal(conv);
  await sh(deps, inst, 'mv -T -- "$1" "$2/$3" && ln -s -- "$4" "$1"', [inst.path, rel, id, `${basename(inst.path)}.releases/${id}`], ctx.signal);
  const local = new Set(inst.localPaths);
  for (const p of sharedPathsOf(inst)) {
    const from = `${rel}/${id}/${p}`;
    const has = (await shellFor(deps, inst).exec(['sh', '-c', 'if [ -e "$1" ] || [ -L "$1" ]; then echo yes; fi', 'sh', from])).stdout.includes('yes');
    if (!has && local.has(p)) continue;
    // In the journal before it happens: an undo of a step that did not run finds nothing to put back.
    (has ? conv.moved : conv.made).push(p);
    await journal(conv);
    await sh(
      deps,
      inst,
      'if [ "$4" = move ]; then mkdir -p -- "$(dirname -- "$2")" && mv -T -- "$1" "$2" && ln -s -- "$3" "$1"; ' + 'else mkdir -p -- "$2" "$(dirname -- "$1")" && ln -s -- "$3" "$1"; fi',
      [from, `${shared}/${p}`, sharedLinkTarget(inst, p), has ? 'move' : 'make'],
      ctx.signal,
    );
  }
  await writeReleaseMeta(deps, inst, { id, revision, at: new Date().toISOString(), backup: null, schema: await schemaHash(deps, inst) });
  await run(shellFor(deps, inst), ['rm', '-f', '--', conversionJournal(inst.path)]);
  ctx.log(`${inst.path} is now a link to release ${id}; shared: ${conv.moved.concat(conv.made).join(', ') || 'nothing'}`);
  return conv;
}

/**
 * The undo of convertToReleases, from any point it reached: the release directory back at the path,
 * shared paths back inside it, shared/ and the releases directory gone. Each command first checks
 * what is there, so it is right for a conversion cut short anywhere, and safe to run again. Nothing
 * is deleted that may hold data: a half-converted instance serves normally until the next run undoes
 * it (maybe days later), so shared/ may hold new uploads by then; they move back into the tree, and
 * when they cannot the undo refuses, saying what to do, and its journal stays for the next run.
 */
export async function undoConversion(deps: Deps, inst: Instance, conv: Conversion, ctx: StepIO): Promise<void> {
  const rel = releasesDir(inst.path);
  const shared = sharedDir(inst.path);
  const dir = `${rel}/${conv.id}`;
  const journalHint = `then remove ${conversionJournal(inst.path)} on the host`;
  // Only an instance still as the conversion left it: a release switched in since (by hand) would
  // lose its link, and the tree moved back would no longer be what serves.
  const seen = await sh(
    deps,
    inst,
    'if [ -L "$1" ] && [ "$(readlink -- "$1")" != "$2" ]; then printf "link %s\n" "$(readlink -- "$1")"; fi; ' +
      'for d in "$3"/*; do if [ -d "$d" ] && ! [ -L "$d" ] && [ "$d" != "$3/$4" ]; then printf "other %s\n" "${d##*/}"; fi; done',
    [inst.path, `${basename(inst.path)}.releases/${conv.id}`, rel, conv.id],
  );
  const link = /^link (.*)$/m.exec(seen.stdout)?.[1];
  if (link !== undefined)
    throw new OpsError(
      `${inst.path} on ${inst.host} links to ${link}, not to release ${conv.id} the cut-short conversion to release mode made: it is not undone`,
      1,
      `the instance changed since: check what ${inst.path} serves, put it right by hand (${dir} is the tree before the conversion, ${shared} its shared files), ${journalHint}`,
    );
  const others = [...seen.stdout.matchAll(/^other (.*)$/gm)].map((m) => m[1]);
  if (others.length)
    throw new OpsError(
      `${rel} on ${inst.host} holds ${others.join(', ')} besides release ${conv.id} of the cut-short conversion to release mode: it is not undone`,
      1,
      `move them out of ${rel} if they are not needed (${dir} is the tree before the conversion), ${journalHint}; or keep release mode and remove the journal`,
    );
  // The tree back at the path first (if it moved): the shared paths then go back into it there.
  await sh(deps, inst, 'if [ -d "$2" ] && ! [ -L "$2" ]; then if [ -L "$1" ]; then rm -f -- "$1"; fi; if ! [ -e "$1" ]; then mv -T -- "$2" "$1"; fi; fi', [inst.path, dir]);
  const tree = inst.path;
  // Each shared path back into the tree in place of its link: moved ones always, made ones when
  // something was written there since (an empty one just goes). A tree location with a real entry of
  // its own stops the undo: the two copies are for a person to compare.
  for (const p of [...conv.moved, ...conv.made]) {
    const res = await sh(
      deps,
      inst,
      'if ! { [ -e "$2" ] || [ -L "$2" ]; }; then if [ -L "$1" ]; then rm -f -- "$1"; fi; exit 0; fi; ' +
        'if [ "$3" = made ] && [ -d "$2" ] && ! [ -L "$2" ] && rmdir -- "$2" 2>/dev/null; then if [ -L "$1" ]; then rm -f -- "$1"; fi; exit 0; fi; ' +
        'if [ -L "$1" ]; then rm -f -- "$1"; fi; ' +
        'if [ -e "$1" ]; then if [ -d "$2" ] && ! [ -L "$2" ] && rmdir -- "$2" 2>/dev/null; then exit 0; fi; echo taken; exit 0; fi; ' +
        'mkdir -p -- "$(dirname -- "$1")" && mv -T -- "$2" "$1"',
      [`${tree}/${p}`, `${shared}/${p}`, conv.moved.includes(p) ? 'moved' : 'made'],
    );
    if (res.stdout.includes('taken'))
      throw new OpsError(
        `${tree}/${p} and ${shared}/${p} on ${inst.host} both exist: undoing the cut-short conversion to release mode would lose one of them`,
        1,
        `keep what belongs in ${tree}/${p} and remove ${shared}/${p}, then run again (the conversion's journal is kept until it is undone)`,
      );
  }
  // Parent directories conversion made inside the release for a link (a missing config/) go again, when empty.
  for (const p of conv.made) {
    const parents = p
      .split('/')
      .slice(0, -1)
      .map((_, n, all) => `${tree}/${all.slice(0, n + 1).join('/')}`);
    if (parents.length) await sh(deps, inst, 'for d in "$@"; do rmdir -- "$d" 2>/dev/null || exit 0; done', parents.reverse());
  }
  // Left in shared/ now are only empty directories (rmdir, never rm -rf: anything else is kept and
  // said); the releases directory holds only the conversion's record and journal, the journal last.
  const left = await sh(
    deps,
    inst,
    'if ! [ -d "$1" ] || [ -L "$1" ]; then exit 0; fi; if [ -L "$5" ]; then rm -f -- "$5"; fi; ' +
      'if [ -d "$2" ] && ! [ -L "$2" ]; then find "$2" -depth -type d -empty -delete; fi; if [ -e "$2" ]; then echo kept; fi; ' +
      'if [ -d "$3" ] && ! [ -L "$3" ]; then rm -f -- "$3/$4.json" "$3/.previous" && rm -f -- "$3/.converting" && { rmdir -- "$3" 2>/dev/null || echo relkept; }; fi',
    [tree, shared, rel, conv.id, `${tree}.opsdeck-link`],
  );
  if (left.stdout.includes('kept')) ctx.log(`${shared} still holds files the conversion did not put there; they are kept: move what belongs into ${tree}, then delete it`, 'warn');
  if (left.stdout.includes('relkept')) ctx.log(`${rel} still holds files the conversion did not put there; they are kept: look at them, then delete it`, 'warn');
  ctx.log(`${inst.path} is a directory again`);
}

/**
 * The journal of a conversion a killed run left half-done, read from the host; undefined when there
 * is none. A damaged one refuses: what it would undo is unknown.
 */
export async function readConversionJournal(deps: Deps, inst: Instance): Promise<Conversion | undefined> {
  const res = await shellFor(deps, inst).exec(['cat', '--', conversionJournal(inst.path)]);
  if (res.code !== 0) return undefined;
  return parseConversionJournal(inst, res.stdout);
}

/** A journal's text as the conversion wrote it, checked: only a release id and lists of paths are taken. */
export function parseConversionJournal(inst: Instance, text: string): Conversion {
  let conv: Conversion;
  try {
    conv = JSON.parse(text) as Conversion;
  } catch {
    throw new OpsError(
      `${conversionJournal(inst.path)} on ${inst.host} is damaged: a conversion to release mode was cut short`,
      1,
      `look at ${inst.path} and ${releasesDir(inst.path)} on the host and put the tree back by hand`,
    );
  }
  const paths = (l: unknown) => Array.isArray(l) && l.every((p) => typeof p === 'string' && p !== '' && !p.startsWith('/') && !p.split('/').includes('..'));
  if (typeof conv?.id !== 'string' || !RELEASE_ID.test(conv.id) || !paths(conv.moved) || !paths(conv.made))
    throw new OpsError(`${conversionJournal(inst.path)} on ${inst.host} is not a conversion journal`);
  return conv;
}

/**
 * A conversion the last run left half-done (killed between its steps): undone from its journal, so
 * the tree is as it was before that run, and the caller converts afresh. False when there is none.
 */
export async function revertHalfConversion(deps: Deps, inst: Instance, ctx: StepIO): Promise<boolean> {
  const conv = await readConversionJournal(deps, inst);
  if (!conv) return false;
  ctx.log(`a conversion to release mode was cut short (release ${conv.id}): undoing it first`, 'warn');
  await undoConversion(deps, inst, conv, ctx);
  return true;
}

/**
 * Back to in place (`--releases 0`): the live release's directory returns to the path, with its
 * shared paths moved back inside it. The other releases and shared/ stay until the run succeeded
 * (finishInPlace), so the undo (backToReleases) can put everything back.
 */
export async function convertToInPlace(deps: Deps, inst: Instance, ctx: StepIO): Promise<{ id: string; restored: string[] } | undefined> {
  const id = await liveRelease(deps, inst, false);
  if (!id) return undefined;
  // A restore cut short may have left the only copy of shared/ as it was beside it: recover settles it first.
  await refuseRestoreLeftovers(deps, inst);
  const dir = `${releasesDir(inst.path)}/${id}`;
  const restored: string[] = [];
  for (const p of sharedPathsOf(inst)) {
    // Linked from the release, or not there at all (a path shared after that release was built, live
    // again after a rollback): either way its one copy in shared/ moves back.
    const res = await sh(
      deps,
      inst,
      'if ! { [ -e "$2" ] || [ -L "$2" ]; }; then exit 0; fi; if [ -L "$1" ]; then rm -f -- "$1" && mv -T -- "$2" "$1" && echo back; elif ! [ -e "$1" ]; then mkdir -p -- "$(dirname -- "$1")" && mv -T -- "$2" "$1" && echo back; fi',
      [`${dir}/${p}`, `${sharedDir(inst.path)}/${p}`],
    );
    if (res.stdout.includes('back')) restored.push(p);
  }
  await sh(deps, inst, 'mv -T -- "$1" "$1.opsdeck-link" && mv -T -- "$2" "$1"', [inst.path, dir], ctx.signal);
  ctx.log(`${inst.path} is a directory again (it was release ${id})`);
  return { id, restored };
}

export async function backToReleases(deps: Deps, inst: Instance, back: { id: string; restored: string[] }): Promise<void> {
  const dir = `${releasesDir(inst.path)}/${back.id}`;
  await sh(deps, inst, 'mv -T -- "$1" "$2" && mv -T -- "$1.opsdeck-link" "$1"', [inst.path, dir]);
  for (const p of back.restored) await sh(deps, inst, 'mv -T -- "$1" "$2" && ln -s -- "$3" "$1"', [`${dir}/${p}`, `${sharedDir(inst.path)}/${p}`, sharedLinkTarget(inst, p)]);
}

/**
 * Once the in-place run succeeded: the other releases and the old link go, and shared/ once empty of
 * what moved back. Anything still in it (a path no longer listed as shared, say) is kept and said:
 * those are uploads, and backups of release mode did not hold them.
 */
export async function finishInPlace(deps: Deps, inst: Instance, ctx?: StepIO): Promise<void> {
  await run(shellFor(deps, inst), ['rm', '-rf', '--', releasesDir(inst.path), `${inst.path}.opsdeck-link`]);
  const shared = sharedDir(inst.path);
  const res = await sh(deps, inst, 'if [ -d "$1" ]; then find "$1" -depth -type d -empty -delete; fi; if [ -e "$1" ]; then echo kept; fi', [shared]);
  if (res.stdout.includes('kept'))
    ctx?.log(
      `${shared} still holds files (paths no longer shared, or ones the live release has its own copy of); they are kept: compare them with the tree, move what belongs, then delete it`,
      'warn',
    );
}
