/** A run is a stream of these; renderers (text, JSON lines, the Ink run view, audit) consume it. */
export type RunEvent =
  | { type: 'run-started'; runId: number | null; command: string; instance: string | null; steps: { name: string; title: string; explain?: string }[]; dryRun: boolean; at: number }
  | { type: 'step-started'; index: number; name: string; title: string; at: number }
  | { type: 'progress'; index: number; name: string; bytes: number; total?: number; rate?: number; at: number }
  | { type: 'log'; index: number | null; level: 'info' | 'warn' | 'error'; message: string; at: number }
  | { type: 'command'; index: number | null; where: string; line: string; code: number | null; signal: string | null; ms: number; bytesIn: number; bytesOut: number; at: number }
  | { type: 'step-done'; index: number; name: string; ms: number; at: number }
  | { type: 'step-failed'; index: number; name: string; error: string; hint?: string; at: number }
  | { type: 'undo-started'; index: number; name: string; at: number }
  | { type: 'undo-done'; index: number; name: string; ok: boolean; error?: string; at: number }
  | { type: 'run-finished'; status: 'ok' | 'failed' | 'rolled-back' | 'dry-run'; error?: string; hint?: string; exitCode: number; ms: number; at: number };

export type Listener = (e: RunEvent) => void;

export { formatBytes } from './format.js';
