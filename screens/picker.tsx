import { Box, Text } from 'ink';
import SelectInput from 'ink-select-input';
import type { FC } from 'react';
import { fit, RowText, type Column } from './components.js';

/** SelectInput's item (its package exports the component, not the type); the key is required here, since a value is an object. */
export interface PickItem<T> {
  key: string;
  label: string;
  value: T;
  /** Why this one cannot be picked: listed dimmed with the reason, and Enter on it does nothing. */
  disabled?: string;
}

/** Whether the item at `index` may be picked. */
export const pickable = <T,>(items: PickItem<T>[], index: number): boolean => !!items[index] && !items[index].disabled;

const NoIndicator: FC<{ isSelected?: boolean }> = () => null;

/** The selected row in inverse, as in the tables (the default indicator would push rows right). */
const PlainItem: FC<{ isSelected?: boolean; label: string; disabled?: string }> = ({ isSelected, label, disabled }) => (
  <Text inverse={isSelected} dimColor={!!disabled} wrap="truncate-end">
    {label}
    {disabled ? `  (${disabled})` : ''}
  </Text>
);

/** A row item for labels made by `columnLabel`: each cell in its column's colour. */
function columnItem(columns: Column[]): FC<{ isSelected?: boolean; label: string; disabled?: string }> {
  return function ColumnItem({ isSelected = false, label, disabled }) {
    // Refused rows: dimmed, no cell colours, the reason after the cells.
    if (disabled)
      return (
        <Text inverse={isSelected} dimColor wrap="truncate-end">
          {label} {disabled}
        </Text>
      );
    const cells: string[] = [];
    let at = 0;
    for (const c of columns) {
      cells.push(label.slice(at, at + c.width).trimEnd());
      at += c.width + 1;
    }
    return <RowText columns={columns} cells={cells} selected={isSelected} />;
  };
}

/** One label holding a row's cells, each cut to its column (cells from hosts are escaped by fit). */
export function columnLabel(columns: Column[], cells: string[]): string {
  return columns.map((c, j) => fit(cells[j] ?? '', c.width)).join(' ');
}

/**
 * A list to pick one of, drawn by ink-select-input: only `limit` rows are laid out, so picking one of
 * 10,000 instances costs what picking one of ten does. The keys stay in the console's one dispatcher
 * (which moves `selected`): SelectInput's own handler reads the index of its last render, so keys
 * typed faster than a frame, or pasted, would be lost, and it has no g, G, PgUp or PgDn.
 */
export function Picker<T>({ items, selected, height, columns, empty }: { items: PickItem<T>[]; selected: number; height: number; columns?: Column[]; empty?: string }) {
  const n = items.length;
  const limit = Math.max(1, height - (columns ? 1 : 0) - (n > height - (columns ? 1 : 0) ? 1 : 0));
  // Past the first page SelectInput shows the initial index on the window's last row.
  const start = selected < limit ? 0 : selected - limit + 1;
  return (
    <Box flexDirection="column">
      {columns ? (
        <Text bold wrap="truncate-end">
          {columns.map((c) => fit(c.title, c.width)).join(' ')}
        </Text>
      ) : null}
      {n === 0 ? (
        <Text dimColor>{empty ?? 'nothing here'}</Text>
      ) : (
        // Remounted at each move: initialIndex is how the selection is given to it.
        <SelectInput key={selected} items={items} initialIndex={selected} limit={limit} isFocused={false} indicatorComponent={NoIndicator} itemComponent={columns ? columnItem(columns) : PlainItem} />
      )}
      {n > limit ? (
        <Text dimColor>
          {start + 1}–{Math.min(start + limit, n)} of {n}
        </Text>
      ) : null}
    </Box>
  );
}

/** The picker dialog: a question, the choices, the keys. */
export function PickView<T>({ message, items, selected, height }: { message: string; items: PickItem<T>[]; selected: number; height: number }) {
  return (
    <Box flexDirection="column" borderStyle="round" borderColor="cyan" paddingX={1}>
      <Text bold>{message}</Text>
      <Picker items={items} selected={selected} height={Math.max(3, height - 4)} />
      <Text dimColor>↑/↓ choose · enter pick · esc cancel</Text>
    </Box>
  );
}
