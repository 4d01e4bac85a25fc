/**
 * The dump rewriter: maps a pg_dump stream's owners and grants onto the roles the loading side has
 * (restore and clone run the dump through it on its way to psql).
 */
import { quoteIdent, type LoadTarget } from './postgres.js';

const ROLE = String.raw`("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const OWNER_RE = new RegExp(String.raw`^(ALTER .+ OWNER TO )${ROLE};$`);
const GRANT_RE = new RegExp(String.raw`^((?:ALTER DEFAULT PRIVILEGES .+ )?GRANT .+ TO )${ROLE}( WITH GRANT OPTION)?;$`);
const REVOKE_RE = new RegExp(String.raw`^((?:ALTER DEFAULT PRIVILEGES .+ )?REVOKE .+ FROM )${ROLE};$`);
const FOR_ROLE_RE = new RegExp(String.raw`^(ALTER DEFAULT PRIVILEGES FOR ROLE )${ROLE}( .*)$`);
const lit = (q: string) => `'${q.replace(/'/g, "''")}'`;
const unquoteRole = (r: string) => (r.startsWith('"') ? r.slice(1, -1).replace(/""/g, '"') : r);

type Lex = { k: 'top' } | { k: 'sq'; esc: boolean } | { k: 'dq' } | { k: 'dollar'; tag: string };

/**
 * Rewrites a plain pg_dump as it streams into psql, line by line, never touching COPY data or the
 * inside of a quoted string or function body (it follows SQL's quoting):
 * - drops the BEGIN; / COMMIT; that pg_dump puts around large objects' data, which would commit the
 *   load's one transaction half-way;
 * - maps the role the dump was taken as (`from`) to the loading role, and whatever else the loading
 *   side cannot give: an owner the loading role cannot act as becomes the loading role (its grants
 *   too: another instance's role gets nothing here), a grant to a role that does not exist there is left out, SET SESSION AUTHORIZATION (superusers only) is left
 *   out. Each is counted in notes(), for the run log;
 * - leaves out COMMENT ON EXTENSION for an extension that stays as another role's (not ours to comment).
 * The bytes hashed against the manifest are the dump's own: this runs after the Meter hashed them.
 */
export class DumpRewriter {
  private lex: Lex = { k: 'top' };
  private copy = false;
  private copyHead = '';
  private copyLen = 0;
  private rest: Buffer[] = [];
  private readonly counts = new Map<string, number>();
  private started = false;
  /** Owners of the dump the loading role cannot act as: their objects are its own here, and so are their grants. */
  private readonly ownersMapped = new Set<string>();
  /** Schemas whose privileges are set at the end (public, and those the dump creates), with the dump's GRANT/REVOKE on each. */
  private readonly schemaAcl = new Map<string, string[]>([['public', []]]);

  constructor(
    private readonly target: LoadTarget,
    private readonly from?: string,
  ) {}

  feed(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    if (!this.started) {
      this.started = true;
      out.push(Buffer.from(this.createInSchema('public', true)));
    }
    let i = 0;
    while (i < chunk.length) {
      if (this.copy) {
        let j = i;
        while (j < chunk.length) {
          const nl = chunk.indexOf(10, j);
          const end = nl === -1 ? chunk.length : nl;
          if (this.copyLen < 3) this.copyHead += chunk.toString('latin1', j, Math.min(end, j + 3 - this.copyLen));
          this.copyLen += end - j;
          if (nl === -1) {
            j = chunk.length;
            break;
          }
          const last = this.copyLen === 2 && this.copyHead === '\\.';
          this.copyHead = '';
          this.copyLen = 0;
          j = nl + 1;
          if (last) {
            this.copy = false;
            break;
          }
        }
        out.push(chunk.subarray(i, j));
        i = j;
        continue;
      }
      const nl = chunk.indexOf(10, i);
      if (nl === -1) {
        this.rest.push(Buffer.from(chunk.subarray(i)));
        break;
      }
      const line = this.rest.length ? Buffer.concat([...this.rest, chunk.subarray(i, nl)]) : chunk.subarray(i, nl);
      this.rest = [];
      i = nl + 1;
      const text = line.toString('utf8');
      const atTop = this.lex.k === 'top';
      this.scan(text);
      const whole = atTop && this.lex.k === 'top';
      const replaced = whole ? this.rewrite(text) : undefined;
      if (whole && /^COPY .+ FROM stdin;$/.test(text)) this.copy = true;
      if (replaced === undefined) out.push(line, NL);
      else if (replaced !== null) out.push(Buffer.from(replaced + '\n'));
      const loaded = replaced === undefined ? text : replaced;
      if (whole && loaded) this.schemaStatement(loaded, out);
    }
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  /**
   * What is held of an unfinished last line (a dump ends with a newline: normally nothing), then the
   * privileges of each schema the load set up made exactly the dump's, where the schema is ours:
   * back to PostgreSQL's (the owner's, and everyone's USAGE on public), then the dump's own
   * GRANT/REVOKE on it once more.
   */
  flush(): Buffer {
    const b = Buffer.concat(this.rest);
    this.rest = [];
    const fix = [...this.schemaAcl].map(
      ([schema, acl]) => `
DO $opsdeck$
DECLARE
  o record;
  own oid := (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = ${lit(schema.startsWith('"') ? schema.slice(1, -1).replace(/""/g, '"') : schema)});
BEGIN
  IF own IS NULL OR NOT pg_catalog.pg_has_role(current_user, own, 'USAGE') THEN RETURN; END IF;
  FOR o IN SELECT DISTINCT a.grantee FROM pg_catalog.pg_namespace n CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) a
    WHERE n.oid = ${lit(schema)}::pg_catalog.regnamespace AND a.grantee <> n.nspowner
  LOOP
    EXECUTE pg_catalog.format('REVOKE ALL ON SCHEMA %s FROM %s', ${lit(schema)}, CASE WHEN o.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(o.grantee)) END);
  END LOOP;
  EXECUTE pg_catalog.format('GRANT ALL ON SCHEMA %s TO %I', ${lit(schema)}, pg_catalog.pg_get_userbyid(own));
${schema === 'public' ? '  GRANT USAGE ON SCHEMA public TO PUBLIC;\n' : ''}${acl.map((q) => `  EXECUTE ${lit(q)};\n`).join('')}END
$opsdeck$;
`,
    );
    return Buffer.concat([b, Buffer.from(fix.join(''))]);
  }

  /**
   * pg_dump sets owners early and grants last: a table of `owner2` in a schema of the app role needs
   * owner2's CREATE there while it loads. So every role the loading role acts as gets CREATE on each
   * schema the dump sets up (public: when it is ours) for the load, and flush() puts each schema's
   * privileges back to exactly the dump's.
   */
  private createInSchema(schema: string, ifOurs: boolean): string {
    const roles = [...this.target.roles].filter(([r, member]) => member && r !== this.target.role && !r.startsWith('pg_')).map(([r]) => quoteIdent(r));
    if (!roles.length) return '';
    const grant = `GRANT CREATE ON SCHEMA ${schema} TO ${roles.join(', ')}`;
    return ifOurs
      ? `DO $opsdeck$ BEGIN IF pg_catalog.pg_has_role(current_user, (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = ${lit(schema)}), 'USAGE') THEN EXECUTE ${lit(grant)}; END IF; END $opsdeck$;\n`
      : `${grant};\n`;
  }

  private schemaStatement(line: string, out: Buffer[]): void {
    let m = /^CREATE SCHEMA ("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*);$/.exec(line);
    if (m) {
      this.schemaAcl.set(m[1], []);
      return;
    }
    if ((m = /^ALTER SCHEMA ("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*) OWNER TO /.exec(line)) && m[1] !== 'public' && this.schemaAcl.has(m[1])) {
      out.push(Buffer.from(this.createInSchema(m[1], false)));
      return;
    }
    if ((m = /^(?:GRANT|REVOKE) .* ON SCHEMA ("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*) (?:TO|FROM) /.exec(line)) && this.schemaAcl.has(m[1])) this.schemaAcl.get(m[1])!.push(line);
  }

  /** What the load could not give back as it was, one line per kind and role. */
  notes(): string[] {
    return [...this.counts].map(([k, n]) => k.replace('{n}', String(n)).replace(/\{s\}/g, n === 1 ? '' : 's'));
  }

  private note(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** A replacement line, null to leave the line out, undefined to keep it. */
  private rewrite(line: string): string | null | undefined {
    if (line === 'BEGIN;' || line === 'COMMIT;') return null;
    if (/^(RE)?SET SESSION AUTHORIZATION\b/.test(line)) {
      const who = line.replace(/^SET SESSION AUTHORIZATION (.*);$/, '$1').replace(/^'(.*)'$/, (_, q: string) => q.replace(/''/g, "'"));
      if (line.startsWith('SET')) this.note(`privileges granted by ${unquoteRole(who)} in the backup granted by ${this.target.role} here, {n} time{s} (only a superuser may act as another role)`);
      return null;
    }
    const ext = /^COMMENT ON EXTENSION ("(?:[^"]|"")+"|[a-z_][a-z0-9_]*) IS /.exec(line);
    if (ext) return this.target.keptExtensions.has(unquoteRole(ext[1])) ? null : undefined;
    let changed = false;
    let m = FOR_ROLE_RE.exec(line);
    if (m) {
      const name = unquoteRole(m[2]);
      const mapped = name === this.from || this.ownersMapped.has(name) ? this.target.role : name;
      if (!this.target.roles.get(mapped)) {
        this.note(`{n} default privilege{s} of role ${name} not restored: ${this.why(name)}`);
        return null;
      }
      if (mapped !== name) [line, changed] = [m[1] + quoteIdent(mapped) + m[3], true];
    }
    if ((m = OWNER_RE.exec(line))) {
      const name = unquoteRole(m[2]);
      const to = this.owner(name);
      if (to !== name && name !== this.from) this.ownersMapped.add(name);
      if (to !== name && name !== this.from) this.note(`{n} object{s} owned by ${name} in the backup, by ${to} here: ${this.why(name)}`);
      return to === name ? undefined : m[1] + quoteIdent(to) + ';';
    }
    if ((m = GRANT_RE.exec(line) ?? REVOKE_RE.exec(line))) {
      if (m[2] === 'PUBLIC') return changed ? line : undefined;
      const name = unquoteRole(m[2]);
      const to = name === this.from || this.ownersMapped.has(name) ? this.target.role : name;
      if (!this.target.roles.has(to)) {
        this.note(`{n} grant{s} to role ${name} not restored: no such role here`);
        return null;
      }
      return to === name && !changed ? undefined : m[1] + (to === name ? m[2] : quoteIdent(to)) + (m[3] ?? '') + ';';
    }
    return changed ? line : undefined;
  }

  /** Who owns, here, what `name` owned in the dump. */
  private owner(name: string): string {
    const mapped = name === this.from ? this.target.role : name;
    return this.target.roles.get(mapped) ? mapped : this.target.role;
  }

  private why(name: string): string {
    return this.target.roles.has(name) ? `${this.target.role} is not a member of ${name}` : 'no such role here';
  }

  /** Follows quotes, dollar quotes and comments through one line, from the state the last left. */
  private scan(line: string): void {
    let i = 0;
    const n = line.length;
    while (i < n) {
      const s = this.lex;
      if (s.k === 'top') {
        const re = /--|['"$]/g;
        re.lastIndex = i;
        const m = re.exec(line);
        if (!m) return;
        i = m.index;
        if (m[0] === '--') return;
        if (m[0] === "'") {
          this.lex = { k: 'sq', esc: i > 0 && /[eE]/.test(line[i - 1]) && !(i > 1 && /[A-Za-z0-9_$]/.test(line[i - 2])) };
          i++;
        } else if (m[0] === '"') {
          this.lex = { k: 'dq' };
          i++;
        } else {
          const d = i > 0 && /[A-Za-z0-9_$]/.test(line[i - 1]) ? null : /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(line.slice(i, i + 66));
          if (d) {
            this.lex = { k: 'dollar', tag: d[0] };
            i += d[0].length;
          } else i++;
        }
      } else if (s.k === 'sq') {
        if (s.esc) {
          const re = /\\[\s\S]|'/g;
          re.lastIndex = i;
          let m: RegExpExecArray | null;
          while ((m = re.exec(line)) && m[0] !== "'");
          if (!m) return;
          i = m.index + 1;
        } else {
          const j = line.indexOf("'", i);
          if (j === -1) return;
          i = j + 1;
        }
        if (line[i] === "'") i++;
        else this.lex = { k: 'top' };
      } else if (s.k === 'dq') {
        const j = line.indexOf('"', i);
        if (j === -1) return;
        i = j + 1;
        if (line[i] === '"') i++;
        else this.lex = { k: 'top' };
      } else {
        const j = line.indexOf(s.tag, i);
        if (j === -1) return;
        i = j + s.tag.length;
        this.lex = { k: 'top' };
      }
    }
  }
}

const NL = Buffer.from('\n');
