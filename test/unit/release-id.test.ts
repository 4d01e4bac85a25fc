import { describe, expect, it } from 'vitest';
import { RELEASE_ID, releaseId } from '../../src/actions/releases.js';

// Rollback's "the release before" and pruning's "the oldest" go by the ids' order. A conversion and
// the update right after it made two ids within one second on a fast machine, which then sorted by
// their revisions: rollback went to the converted directory (releases.test failed in a clean clone).
describe('release ids', () => {
  const at = Date.parse('2026-11-30T22:54:33.200Z');

  it('names the time to the second and the revision', () => {
    const id = releaseId('fb761027cb55aa', [], at);
    expect(id).toBe('20261130T225433Z-fb761027cb');
    expect(id).toMatch(RELEASE_ID);
  });

  it('made within the same second as the newest taken one, sorts after it whatever the revisions', () => {
    const first = releaseId('fb761027cb', [], at);
    const second = releaseId('2684195527', [first], at + 300);
    expect(second).toBe('20261130T225434Z-2684195527');
    expect([second, first].sort()).toEqual([first, second]);
  });

  it('after the clock went back, still sorts after every taken one', () => {
    const taken = ['20261130T225433Z-aaaa', '20261130T230000Z-restored', 'not-a-release'];
    const id = releaseId('0000aa', taken, at);
    expect(id).toBe('20261130T230001Z-0000aa');
    expect([...taken.slice(0, 2), id].sort().at(-1)).toBe(id);
  });
});
