import { useSyncExternalStore } from 'react';
import type { InstanceSample } from '../src/health/probes.js';
import type { Sampler, SamplerState, Tracked } from '../src/health/sampler.js';
import { sparkline } from './sparkline.js';

const off = { subscribe: () => () => {}, getSnapshot: (): SamplerState | undefined => undefined };

/**
 * The sampler's newest snapshot, for the views that draw live data. They subscribe themselves, so a
 * new snapshot redraws them and not the whole console (whose other screens read the inventory).
 */
export function useLive(sampler: Sampler | undefined): { snap?: SamplerState; isStale: (t?: Tracked<unknown>) => boolean } {
  const src = sampler ?? off;
  const snap = useSyncExternalStore(src.subscribe, src.getSnapshot);
  return { snap, isStale: (t) => !!sampler?.isStale(t) };
}

export const stateColor = (v: string): string | undefined =>
  /^(DOWN|PROBLEM|no answer)/.test(v) ? 'red' : /STALE|probing|maintenance/.test(v) ? 'yellow' : /^(up|ok)\b/.test(v) ? 'green' : undefined;

export function metricsCell(s: InstanceSample | undefined, history: Record<string, number[]>): string {
  return Object.entries(s?.metrics ?? {})
    .map(([k, v]) => (typeof v === 'number' ? `${k} ${v} ${sparkline(history[`metric:${k}`] ?? [], 6, { fromMin: true }).trim()}` : `${k} ERROR`))
    .join('  ');
}
