// Answering `mirrord/pickTarget` with a quick pick that offers the last
// choice of this workspace first.

import type { PickTargetResult, TargetList } from './protocol';

/** A key-value store, such as VS Code's `workspaceState`. */
export interface Memento {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): Thenable<void> | Promise<void>;
}

export interface PickItem {
  label: string;
  description: string;
}

/** Shows items and resolves with the one picked (`undefined`: dismissed). */
export type QuickPick = (items: PickItem[], placeHolder: string) => Promise<PickItem | undefined>;

export const LAST_TARGET_KEY = 'mirrord.lastTarget';

/** The targets as items, the last one picked in this workspace first. */
export function pickItems(list: TargetList, last: string | undefined): PickItem[] {
  const items = list.targets.map((t) => ({ label: t.path, description: t.description }));
  const index = items.findIndex((i) => i.label === last);
  if (index > 0) {
    const [previous] = items.splice(index, 1);
    items.unshift({ ...previous, description: `last used · ${previous.description}` });
  }
  return items;
}

export async function pickTarget(list: TargetList, quickPick: QuickPick, memento: Memento): Promise<PickTargetResult> {
  const items = pickItems(list, memento.get<string>(LAST_TARGET_KEY));
  const picked = await quickPick(items, 'mirrord: run the program in which target?');
  if (picked === undefined) return { target: null };
  await memento.update(LAST_TARGET_KEY, picked.label);
  return { target: picked.label };
}
