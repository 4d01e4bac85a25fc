// An esbuild plugin: node-postgres picks its socket at load time by asking whether it runs in a
// Cloudflare Worker, and on Node 20 (no `navigator`) its test evaluates `typeof Response`, which
// loads Node's whole HTTP client (undici): more CPU than the rest of a command's start-up, paid by
// every command that opens a PostgreSQL connection. opsdeck only runs on Node, so the bundle asks
// nothing. A pattern that is not found fails the build: a newer pg must be looked at again.
import { readFile } from 'node:fs/promises';

const FROM = 'if (isCloudflareRuntime()) {';

export const pgNodeOnly = {
  name: 'pg-node-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]pg[\\/]lib[\\/]stream\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes(FROM)) throw new Error(`build/pg-node-only.mjs: ${args.path} no longer has '${FROM}': look at how pg chooses its socket again`);
      return { contents: text.replace(FROM, 'if (false) {'), loader: 'js' };
    });
  },
};
