import type { ReactElement } from 'react';
import type { DashboardData, Panel } from './listing.js';
import type { InstanceRow, UiModel } from './model.js';
import type { PickItem } from './picker.js';

/**
 * The parameters each screen is opened with, by kind. Each file in views/ adds its own entry
 * (declaration merging), so a new screen is its file and its line in views/index.ts.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by the views
export interface Routes {}
export type Kind = keyof Routes;
export type Route<K extends Kind> = { kind: K } & Routes[K];
/** A screen on the navigation stack. */
export type Screen = { [K in Kind]: Route<K> }[Kind];

/** A key binding: the keys, the hint shown in the footer and help, and what it does. */
export interface Binding<R = Screen> {
  keys: string[];
  label: string;
  hint: string;
  when?: () => boolean;
  /** Why the session's role may not use it here (team inventory): shown dim with the reason; the key only says so. */
  denied?: (route: R) => string | undefined;
  run: (route: R) => void;
}

export interface ConfirmDialog {
  kind: 'confirm';
  message: string;
  action: string;
  /** On a protected target the name must be typed to go on. */
  typeName?: string;
  typed: string;
  focus: 'cancel' | 'ok';
  onYes: () => void;
}

/** A picker: the items' values are the objects picked; the dialog knows only how many and how to pick one. */
export interface PickDialog {
  kind: 'pick';
  message: string;
  count: number;
  selected: number;
  pick: (index: number) => void;
  render: (selected: number, height: number) => ReactElement;
}

export type Dialog = ConfirmDialog | PickDialog;

/** Navigation state: a ref the keys update synchronously (see App). */
export interface Nav {
  stack: Screen[];
  sel: Record<string, number>;
  filter: string;
  filtering: boolean;
  dialog?: Dialog;
  /** Which dashboard panel the keys move in. */
  focus: Panel;
  /** The : command line while it is being typed. */
  command?: string;
}

/** What a screen's keys and render are given: the model, the navigation and the shared moves. */
export interface Ctx {
  readonly model: UiModel;
  readonly nav: Nav;
  readonly cols: number;
  /** Rows between header and footer. */
  readonly bodyHeight: number;
  /** The instances that pass the environment (e) and text (/) filters. */
  visible(): InstanceRow[];
  dash(): DashboardData;
  /** The selected row of the screen on top. */
  selected(): number;
  /** Moves the selection of the screen on top by n rows (within its rows). */
  move(n: number): void;
  jump(where: 'top' | 'bottom'): void;
  top(): Screen;
  push(s: Screen): void;
  pop(): void;
  /** Replaces the screen on top (a wizard's next stage). */
  replace(s: Screen): void;
  /** Empties the stack down to this one screen. */
  reset(s: Screen): void;
  /** A screen's keys, for the help screen to list. */
  keysOf(kind: Kind): Pick<Binding, 'keys' | 'label' | 'hint'>[];
  confirm(c: Omit<ConfirmDialog, 'kind' | 'typed' | 'focus'>): void;
  pick<T>(message: string, items: PickItem<T>[], onPick: (value: T) => void): void;
  exit(): void;
  redraw(): void;
}

export interface ScreenDef<K extends Kind> {
  /** Where the selection is kept (default: the kind): screens opened on different things keep one each. */
  selKey?: (route: Route<K>, nav: Nav) => string;
  /** How many rows the moves (j, k, g, G, PgUp, PgDn) go over. */
  count: (ctx: Ctx, route: Route<K>) => number;
  /** The keys, in the order the footer and help list them. */
  keys: (ctx: Ctx) => Binding<Route<K>>[];
  render: (ctx: Ctx, route: Route<K>) => ReactElement;
}
