import { join } from 'node:path';
import { asLabUser, lab } from '../helpers.js';

// What releases.test.ts and releases-cut.test.ts share: a repository of a test's own and the page a commit serves.

const l = lab();
const root = l.hosts[0].root;

export const page = (v: string) => `<html><body><h1>Sample app</h1><p>${v}</p></body></html>\n`;

/** A repository of our own (a bare copy of the lab app's) and a work tree to commit to it. */
export function ownRepo(name: string): { url: string; commit: (branch: string, from: string, files: Record<string, string | null>, date?: Date) => string } {
  const url = join(root, `${name}.git`);
  const work = join(root, `${name}-work`);
  asLabUser('rm', ['-rf', url, work]);
  asLabUser('git', ['clone', '-q', '--bare', l.appRepo, url]);
  asLabUser('git', ['clone', '-q', url, work]);
  const git = (...a: string[]) => asLabUser('git', ['-C', work, '-c', 'user.name=lab', '-c', 'user.email=lab@localhost', ...a]).trim();
  return {
    url,
    commit: (branch, from, files, date) => {
      git('checkout', '-q', '-B', branch, from);
      for (const [f, text] of Object.entries(files)) {
        if (text === null) asLabUser('rm', ['-f', join(work, f)]);
        else asLabUser('sh', ['-c', 'printf "%s" "$2" > "$1"', 'sh', join(work, f), text]);
      }
      git('add', '-A');
      // Commit dates set by hand: update --lag picks commits by them.
      const when = date ? [`GIT_COMMITTER_DATE=${date.toISOString()}`, `GIT_AUTHOR_DATE=${date.toISOString()}`] : [];
      asLabUser('env', [...when, 'git', '-C', work, '-c', 'user.name=lab', '-c', 'user.email=lab@localhost', 'commit', '-q', '-m', `${branch}: ${Object.keys(files).join(', ')}`]);
      git('push', '-q', '-f', 'origin', `${branch}:${branch}`);
      return git('rev-parse', 'HEAD');
    },
  };
}
