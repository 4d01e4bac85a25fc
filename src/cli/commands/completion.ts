import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { resolveHome } from '../../../inventory/home.js';
import { quoteArg } from '../../remote/quote.js';

// Shell completion. The script carries the command tree as commander knows it when the script is
// printed (commands, subcommands, flags, which flag takes which value); names of environments,
// hosts, instances and backups come at each tab from `opsdeck __complete KIND`, which bin/opsdeck
// answers straight from the inventory file: no CLI, no Ink, so it stays quick on big inventories.
// This file is imported on that path: keep its imports light (commander only as a type).

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

/** Kinds of names `__complete` prints, and the table each comes from. */
const NAME_QUERIES: Record<string, string[]> = {
  envs: ['SELECT name FROM envs ORDER BY name'],
  hosts: ['SELECT name FROM hosts ORDER BY name'],
  instances: ['SELECT name FROM instances ORDER BY name'],
  backups: ['SELECT id FROM backups ORDER BY created_at DESC'],
  targets: ['SELECT name FROM instances ORDER BY name', 'SELECT name FROM hosts ORDER BY name'],
};

/**
 * The names of one kind, from the inventory opened read-only (nothing is created or migrated: a home
 * without an inventory has no names). Unknown kinds print nothing: a completion never errors.
 */
export async function completionNames(kind: string, home?: string): Promise<string[]> {
  const queries = NAME_QUERIES[kind];
  const dir = resolveHome(home);
  const file = join(dir, 'inventory.sqlite');
  if (!queries) return [];
  if (teamInventory(dir)) return teamNames(kind, dir, queries);
  if (!existsSync(file)) return [];
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return queries.flatMap((q) => db.prepare(q).pluck().all() as string[]);
  } catch {
    return []; // an inventory of an older or newer layout: no names rather than an error mid-line
  } finally {
    db.close();
  }
}

/** How long a team inventory's names are reused: the tabs of one command line cost one connection, and a name just added (here or by another operator) shows after this. */
const TEAM_NAMES_TTL_MS = 15_000;

/**
 * A team inventory's names (PostgreSQL, only those the role may see), kept a minute in the home's
 * cache: a connection per tab would make every tab wait on the network. With no password at hand
 * (OPSDECK_INVENTORY_PASSWORD or ~/.pgpass; a tab cannot prompt), no names.
 */
async function teamNames(kind: string, dir: string, queries: string[]): Promise<string[]> {
  const cache = join(dir, 'cache', `names-${kind}`);
  try {
    if (Date.now() - statSync(cache).mtimeMs < TEAM_NAMES_TTL_MS) return readFileSync(cache, 'utf8').split('\n').filter(Boolean);
  } catch {}
  let names: string[];
  try {
    const { Inventory } = await import('../../../inventory/index.js');
    const inv = new Inventory(dir, { connectTimeoutMs: 3000 });
    try {
      names = queries.flatMap((q) =>
        inv.db
          .prepare(q)
          .all()
          .map((r) => String(Object.values(r as Record<string, unknown>)[0])),
      );
    } finally {
      inv.close();
    }
  } catch {
    return [];
  }
  mkdirSync(dirname(cache), { recursive: true, mode: 0o700 });
  writeFileSync(cache + '.tmp', names.join('\n') + '\n', { mode: 0o600 });
  renameSync(cache + '.tmp', cache);
  return names;
}

/** Whether the inventory is a team one (OPSDECK_INVENTORY, or the setting), not the home's file. */
function teamInventory(dir: string): boolean {
  if (process.env.OPSDECK_INVENTORY) return true;
  try {
    return !!(JSON.parse(readFileSync(join(dir, 'settings.json'), 'utf8')) as { inventory?: string }).inventory;
  } catch {
    return false;
  }
}

/** bin/opsdeck's fast path: `opsdeck [--home DIR] __complete KIND`. */
export async function printCompletionNames(args: string[], home?: string): Promise<number> {
  const names = await completionNames(args[0] ?? '', home);
  if (names.length) process.stdout.write(names.join('\n') + '\n');
  return 0;
}

/** What a positional argument or an option's value names, by the word commander's usage gives it. */
function kindOf(group: string, word: string, leaf = ''): string {
  // add and make name something new: no names to offer.
  if (word === 'name' && (leaf === 'add' || leaf === 'make')) return '-';
  switch (word) {
    case 'instance':
    case 'source':
    case 'target':
    case 'scratch':
    case 'a':
    case 'b':
      return group === 'health' ? 'targets' : 'instances';
    case 'env':
      return 'envs';
    case 'host':
      return 'hosts';
    case 'id':
      return group === 'runs' ? '-' : 'backups';
    case 'name':
      return { env: 'envs', host: 'hosts', instance: 'instances' }[group] ?? '-';
    case 'file':
    case 'dir':
      return group === 'instance' && word === 'dir' ? '-' : 'file';
    case 'mode':
      return 'w:on,off';
    case 'kind':
      return group === 'notify' ? 'w:email,webhook' : '-';
    default:
      return '-';
  }
}

/** The value word of an option's flags: `--to <instance>` gives instance. */
const valueWord = (flags: string) => /[<[]([^>\]]+)[>\]]/.exec(flags)?.[1] ?? '';

/**
 * One line per command: its path, subcommands, flags, flags taking a value (FLAG=KIND) and its
 * positional arguments' kinds (a trailing * for a variadic one), tab-separated, '-' for none.
 */
export function commandTree(program: Command): string[] {
  const lines: string[] = [];
  const help = program.createHelp();
  const join_ = (xs: string[]) => (xs.length ? xs.join(' ') : '-');
  const walk = (cmd: Command, path: string[]) => {
    const group = path[1] ?? '';
    const visible = help.visibleCommands(cmd);
    const options = help.visibleOptions(cmd).filter((o) => o.long);
    const flags = options.map((o) => o.long!);
    const valued = options.filter((o) => o.required || o.optional).map((o) => `${o.long}=${o.long === '--home' ? 'file' : kindOf(group, valueWord(o.flags))}`);
    const args = cmd.registeredArguments.map((a) => (a.argChoices ? `w:${a.argChoices.join(',')}` : kindOf(group, a.name(), path[path.length - 1])) + (a.variadic ? '*' : ''));
    lines.push([path.join(' '), join_(visible.map((c) => c.name())), join_(flags), join_(valued), join_(args)].join('\t'));
    for (const c of visible) walk(c, [...path, c.name()]);
  };
  walk(program, ['opsdeck']);
  // The tree travels inside single quotes in each script.
  if (lines.some((l) => l.includes("'") || l.includes('\\'))) throw new Error('a command or flag name holds a quote or backslash');
  return lines;
}

/** The binary the script calls for names: the one running now when it is opsdeck's, else from PATH. */
const binary = () => (process.argv[1]?.endsWith('opsdeck') ? process.argv[1] : 'opsdeck');

// The parsers below read the same tree the same way: walk the words before the cursor (options and
// their values skipped, --home kept for the names), descend into subcommands until the first
// positional word, then offer the value of the option just typed, the flags, or the subcommands and
// the names the next positional argument takes.

const bashScript = (tree: string[], bin: string) => `# opsdeck completion for bash. Load it with: source <(opsdeck completion bash)
_opsdeck_bin=${quoteArg(bin)}
_opsdeck_tree='${tree.join('\n')}'

_opsdeck_reply() { # KIND HOME WORDS
  local kind=$1 names=$3
  case $kind in
    - | '') ;;
    file)
      COMPREPLY=($(compgen -f -- "$cur") $(compgen -W "$names" -- "$cur"))
      return ;;
    w:*) names="$names \${kind#w:}"; names=\${names//,/ } ;;
    *) names="$names $("$_opsdeck_bin" \${2:+--home "$2"} __complete "$kind" 2>/dev/null)" ;;
  esac
  COMPREPLY=($(compgen -W "$names" -- "$cur"))
}

_opsdeck() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} cmd=opsdeck home= npos=0 i w kind= p s f v a
  local -A subs flags valued args
  while IFS=$'\\t' read -r p s f v a; do
    subs[$p]=$s flags[$p]=$f valued[$p]=$v args[$p]=$a
  done <<<"$_opsdeck_tree"
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case $w in
      --home) home=\${COMP_WORDS[i + 1]}; ((i++)); continue ;;
      --home=*) home=\${w#--home=}; continue ;;
      -*) [[ " \${valued[$cmd]} \${valued[opsdeck]} " == *" $w="* ]] && ((i++)); continue ;;
    esac
    if ((npos == 0)) && [[ " \${subs[$cmd]} " == *" $w "* ]]; then cmd="$cmd $w"; else ((npos++)); fi
  done
  v=" \${valued[$cmd]} \${valued[opsdeck]} "
  if [[ $prev == -* && $v == *" $prev="* ]]; then
    kind=\${v#*" $prev="}
    _opsdeck_reply "\${kind%% *}" "$home" ""
    return
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "\${flags[$cmd]} \${flags[opsdeck]}" -- "$cur"))
    return
  fi
  local -a kinds=(\${args[$cmd]})
  s=\${subs[$cmd]}
  ((npos == 0)) || s=
  [[ $s == - ]] && s=
  kind=-
  if [[ \${kinds[0]} != - ]]; then
    if ((npos < \${#kinds[@]})); then kind=\${kinds[npos]}; elif [[ \${kinds[-1]} == *'*' ]]; then kind=\${kinds[-1]}; fi
  fi
  _opsdeck_reply "\${kind%'*'}" "$home" "$s"
}
complete -F _opsdeck opsdeck
`;

const zshScript = (tree: string[], bin: string) => `#compdef opsdeck
# opsdeck completion for zsh. Load it with: source <(opsdeck completion zsh)
# (after compinit), or save it as _opsdeck in a directory of your fpath.
_opsdeck_bin=${quoteArg(bin)}
_opsdeck_tree='${tree.join('\n')}'

_opsdeck() {
  emulate -L zsh
  local cur=\${words[CURRENT]} prev=\${words[CURRENT-1]} cmd=opsdeck home= npos=0 i w kind= p s f v a
  local -A subs flags valued args
  local -a names kinds
  while IFS=$'\\t' read -r p s f v a; do
    subs[$p]=$s; flags[$p]=$f; valued[$p]=$v; args[$p]=$a
  done <<<"$_opsdeck_tree"
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    case $w in
      --home) home=\${words[i + 1]}; ((i++)); continue ;;
      --home=*) home=\${w#--home=}; continue ;;
      -*) [[ " \${valued[$cmd]} \${valued[opsdeck]} " == *" $w="* ]] && ((i++)); continue ;;
    esac
    if ((npos == 0)) && [[ " \${subs[$cmd]} " == *" $w "* ]]; then cmd="$cmd $w"; else ((npos++)); fi
  done
  v=" \${valued[$cmd]} \${valued[opsdeck]} "
  if [[ $prev == -* && $v == *" $prev="* ]]; then
    kind=\${v#*" $prev="}
    kind=\${kind%% *}
  elif [[ $cur == -* ]]; then
    compadd -- \${=flags[$cmd]} \${=flags[opsdeck]}
    return
  else
    kinds=(\${=args[$cmd]})
    if ((npos == 0)) && [[ \${subs[$cmd]} != - ]]; then names=(\${=subs[$cmd]}); fi
    kind=-
    if [[ \${kinds[1]} != - ]]; then
      if ((npos < \${#kinds})); then kind=\${kinds[npos + 1]}; elif [[ \${kinds[-1]} == *'*' ]]; then kind=\${kinds[-1]}; fi
    fi
    kind=\${kind%'*'}
  fi
  case $kind in
    -) ;;
    file) _files ;;
    w:*) names+=(\${(s:,:)kind#w:}) ;;
    *) names+=(\${(f)"$("$_opsdeck_bin" \${home:+--home} \${home:+$home} __complete $kind 2>/dev/null)"}) ;;
  esac
  (( \${#names} )) && compadd -- $names
}
if (( $+functions[compdef] )); then compdef _opsdeck opsdeck; fi
`;

const fishScript = (tree: string[], bin: string) => `# opsdeck completion for fish. Load it with: opsdeck completion fish | source
# or save it as ~/.config/fish/completions/opsdeck.fish
set -g __opsdeck_bin ${quoteArg(bin)}
set -g __opsdeck_tree ${tree.map((l) => quoteArg(l)).join(' \\\n    ')}

function __opsdeck_field -a cmd idx
    for line in $__opsdeck_tree
        set -l f (string split \\t -- $line)
        if test "$f[1]" = "$cmd"
            echo $f[$idx]
            return
        end
    end
end

function __opsdeck_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmd opsdeck
    set -l home
    set -l npos 0
    set -l skip 0
    for w in $tokens[2..-1]
        if test $skip = home
            set home $w
            set skip 0
            continue
        else if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case --home
                set skip home
            case '--home=*'
                set home (string replace -- --home= '' $w)
            case '-*'
                if contains -- $w (string replace -r -- '=.*' '' (string split ' ' -- (__opsdeck_field $cmd 4) (__opsdeck_field opsdeck 4)))
                    set skip 1
                end
            case '*'
                if test $npos = 0; and contains -- $w (string split ' ' -- (__opsdeck_field $cmd 2))
                    set cmd "$cmd $w"
                else
                    set npos (math $npos + 1)
                end
        end
    end
    set -l kind -
    set -l names
    if test $skip = 1
        for v in (string split ' ' -- (__opsdeck_field $cmd 4) (__opsdeck_field opsdeck 4))
            if test (string replace -r -- '=.*' '' $v) = $tokens[-1]
                set kind (string replace -r -- '^[^=]*=' '' $v)
            end
        end
    else if string match -q -- '-*' $cur
        string split ' ' -- (__opsdeck_field $cmd 3) (__opsdeck_field opsdeck 3)
        return
    else
        set -l kinds (string split ' ' -- (__opsdeck_field $cmd 5))
        if test $npos = 0; and test (__opsdeck_field $cmd 2) != -
            set names (string split ' ' -- (__opsdeck_field $cmd 2))
        end
        if test "$kinds[1]" != -
            if test $npos -lt (count $kinds)
                set kind $kinds[(math $npos + 1)]
            else if string match -q -- '*\\*' $kinds[-1]
                set kind $kinds[-1]
            end
        end
        set kind (string replace -- '*' '' $kind)
    end
    switch $kind
        case file
            __fish_complete_path $cur
        case 'w:*'
            set names $names (string split , -- (string replace -- w: '' $kind))
        case -
        case '*'
            if test -n "$home"
                set names $names ($__opsdeck_bin --home $home __complete $kind 2>/dev/null)
            else
                set names $names ($__opsdeck_bin __complete $kind 2>/dev/null)
            end
    end
    string join \\n -- $names
end

complete -c opsdeck -f -a '(__opsdeck_complete)'
`;

/** The completion script for a shell, from the program's command tree. */
export function completionScript(program: Command, shell: Shell, bin = binary()): string {
  const tree = commandTree(program);
  return { bash: bashScript, zsh: zshScript, fish: fishScript }[shell](tree, bin);
}

/** completion SHELL, and the hidden __complete the scripts call for names. */
export function register(program: Command): void {
  program
    .command('completion')
    .description('print the shell completion script: commands, flags, and the names of environments, hosts, instances and backups')
    .addArgument(program.createArgument('<shell>', 'bash, zsh or fish').choices(SHELLS))
    // Written out, not through help.ts's examples(): this file stays light for __complete.
    .addHelpText(
      'after',
      '\nExamples:\n  source <(opsdeck completion bash)   # in ~/.bashrc\n  opsdeck completion zsh > "${fpath[1]}/_opsdeck"   # a directory of your fpath, before compinit\n  opsdeck completion fish > ~/.config/fish/completions/opsdeck.fish',
    )
    .action((shell: Shell) => {
      process.stdout.write(completionScript(program, shell));
    });
  program
    .command('__complete <kind>', { hidden: true })
    .description('print the names of one kind (envs, hosts, instances, backups, targets) for completion scripts')
    .action(async (kind: string, _o: unknown, cmd: Command) => {
      await printCompletionNames([kind], cmd.optsWithGlobals<{ home?: string }>().home);
    });
}
