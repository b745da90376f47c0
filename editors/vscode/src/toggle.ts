// The on/off state of mirrord for one workspace, kept in its state.

import type { Memento } from './targets';

export const ENABLED_KEY = 'mirrord.enabled';

export class Toggle {
  constructor(private readonly memento: Memento) {}

  get enabled(): boolean {
    return this.memento.get<boolean>(ENABLED_KEY) ?? false;
  }

  async flip(): Promise<boolean> {
    const next = !this.enabled;
    await this.memento.update(ENABLED_KEY, next);
    return next;
  }

  /** The status bar's text and tooltip. */
  get label(): { text: string; tooltip: string } {
    return this.enabled
      ? { text: '$(debug-alt) mirrord: on', tooltip: 'Launches run under mirrord: click to turn off' }
      : { text: '$(debug-alt) mirrord: off', tooltip: 'Launches run normally: click to run them under mirrord' };
  }
}
