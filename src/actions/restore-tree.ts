/** The restored tree beside the live one: where it is staged, how it is swapped in, and its fingerprint after. */
import type { Backup, Instance } from '../../inventory/index.js';
import type { StepIO } from '../core/plan.js';
import { run } from '../remote/shell.js';
import { shellFor, type Deps } from '../deps/deps.js';
import { treeKey } from './backup.js';
import { TREE_KEY_LINE } from '../store/tree-index.js';
import { stageCode } from './restore-data.js';

// Scratch directories sit beside the target so the final swap is a rename on one filesystem.
/** Where a restore stages the new tree beside the live one, and where the old one waits until the run is done. */
export const stagingOf = (path: string) => `${path}.opsdeck-incoming`;
export const oldOf = (path: string) => `${path}.opsdeck-previous`;

/**
 * The staged tree's entries below its top, as treeKey lists them; undefined when they cannot be read
 * (or are too many to hold: the swap then reads the whole tree). Any later change to an entry changes
 * its ctime, which no one can set back, or adds or drops a line: a tree changed after this listing
 * never matches the fingerprint made from it.
 */
export function listStaged(deps: Deps, target: Instance, staging: string, signal: AbortSignal): Promise<string | undefined> {
  const listed = shellFor(deps, target)
    // No racy marks (RACY_MARK): nothing but this restore writes in the staging directory, and the files
    // tar just wrote there would all be marked, so a backup right after a restore could never reuse it.
    .exec(['sh', '-c', `cd -- "$1" && find . -mindepth 1 -printf "${TREE_KEY_LINE}"`, 'sh', staging], { signal, maxBuffer: 1 << 28 })
    .then((r) => (r.code === 0 ? r.stdout : undefined));
  return listed.catch(() => undefined);
}

/**
 * The swapped-in tree's fingerprint, as treeKey gives it: from the staged tree's listing (its top
 * only is read now, its ctime changed by the rename; a directory, never racy), else read whole.
 */
export async function swappedTreeKey(deps: Deps, target: Instance, staged: Promise<string | undefined> | undefined, signal: AbortSignal): Promise<string | undefined> {
  const below = await staged;
  if (below === undefined) return treeKey(deps, target, signal);
  const res = await shellFor(deps, target).exec(
    ['sh', '-c', `cd -- "$1" && top=$(find . -maxdepth 0 -printf "${TREE_KEY_LINE}") && { printf "%s\\n" "$top"; cat; } | LC_ALL=C sort | sha256sum`, 'sh', target.path],
    {
      stdin: below,
      signal,
    },
  );
  const key = res.stdout.split(' ')[0];
  return res.code === 0 && /^[0-9a-f]{64}$/.test(key) ? key : undefined;
}

/** The swap as one remote command: the current tree aside, the staged one in its place. */
export async function swapIn(deps: Deps, target: Instance, staging: string, old: string): Promise<void> {
  await run(shellFor(deps, target), ['sh', '-c', 'rm -rf -- "$2" && if [ -e "$1" ]; then mv -- "$1" "$2"; fi && mv -- "$3" "$1"', 'sh', target.path, old, staging]);
}

/** Deletes a swapped-out tree in the background on the host: it decides nothing and takes seconds. */
export async function removeLater(deps: Deps, target: Instance, dir: string): Promise<void> {
  await run(shellFor(deps, target), ['sh', '-c', 'nohup rm -rf -- "$1" >/dev/null 2>&1 </dev/null &', 'sh', dir]);
}

/** Puts a backup's code tree back in place of the instance's: staged, checked, swapped. For undo. */
export async function putCodeBack(deps: Deps, backup: Backup, target: Instance, ctx: StepIO): Promise<void> {
  const staging = stagingOf(target.path);
  const old = oldOf(target.path);
  await stageCode(deps, backup, target, staging, ctx);
  await swapIn(deps, target, staging, old);
  await removeLater(deps, target, old);
}
