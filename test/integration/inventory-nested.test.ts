import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { BACKENDS, newHome } from '../helpers.js';

// The nesting rule straight on the inventory, on both backends: one instance per tree, on one machine
// (whatever host entries name it), never a tree inside another's nor one that holds another's.
describe.each(BACKENDS)('instance trees do not nest (%s)', (backend) => {
  let inv: Inventory;
  const host = (name: string, address: string, jump: string | null = null) => inv.addHost({ name, address, port: 2222, user: 'u', keyFile: null, jump, hostKey: null });
  const add = (name: string, on: string, path: string) => inv.addInstance({ name, host: on, path, env: 'dev', url: null, dbUrl: null, branch: null });
  const names = () => inv.listInstances().map((i) => `${i.name} ${i.host}:${i.path}`);

  beforeAll(() => {
    inv = new Inventory(newHome(backend));
    inv.addEnv('dev', false);
    host('web', '10.0.0.5');
    host('web-again', '10.0.0.5');
    host('other', '10.0.0.6');
    host('behind', '10.0.0.5', 'other');
    add('shop', 'web', '/srv/www/shop');
    add('odd', 'web', '/srv/www/ünï_%😀');
  });
  afterAll(() => inv?.close());

  it('refuses a tree inside another, one holding another, and the same directory under another host name', () => {
    const before = names();
    const refused = (name: string, on: string, path: string, message: RegExp) => {
      let err: unknown;
      try {
        add(name, on, path);
      } catch (e) {
        err = e;
      }
      expect(err, `${name} at ${on}:${path}`).toMatchObject({ exitCode: 2, message: expect.stringMatching(message) });
    };
    refused('inner', 'web', '/srv/www/shop/vendor/inner', /^web:\/srv\/www\/shop\/vendor\/inner is inside the tree of instance shop \(web:\/srv\/www\/shop\)/);
    refused('inner', 'web-again', '/srv/www/shop/vendor', /is inside the tree of instance shop \(web:\/srv\/www\/shop\)/);
    refused('outer', 'web', '/srv/www', /^web:\/srv\/www holds the tree of instance (shop|odd) /);
    refused('outer', 'web-again', '/srv', /holds the tree of instance (shop|odd) /);
    refused('twin', 'web-again', '/srv/www/shop', /^instance shop already lives at web:\/srv\/www\/shop, the same directory on the same machine/);
    // Characters LIKE would read as patterns, and one beyond the BMP (two UTF-16 units, one code point).
    refused('odd-inner', 'web', '/srv/www/ünï_%😀/x', /inside the tree of instance odd/);
    expect(names()).toEqual(before);
  });

  it('allows a sibling sharing a prefix, the same path on another machine or behind a jump host, and an instance checked against itself', () => {
    add('shop2', 'web', '/srv/www/shop2');
    add('odd2', 'web', '/srv/www/ünï_%😀x');
    add('shop-other', 'other', '/srv/www/shop/vendor/inner');
    add('shop-behind', 'behind', '/srv/www/shop');
    expect(() => inv.refuseNested('shop', 'web', '/srv/www/shop')).not.toThrow();
    expect(inv.nestedWith('web-again', '/srv/www/shop/a/b')).toEqual({ name: 'shop', host: 'web', path: '/srv/www/shop', inside: true });
    expect(inv.nestedWith('other', '/srv/www/shop')).toEqual({ name: 'shop-other', host: 'other', path: '/srv/www/shop/vendor/inner', inside: false });
    expect(inv.nestedWith('nowhere', '/srv/www/shop')).toBeUndefined();
  });
});
