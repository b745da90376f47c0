// The IDE service's own LSP methods and their shapes: a copy of
// adapter/src/ide/protocol.rs (keep the two in step).

export const LIST_TARGETS = 'mirrord/listTargets';
export const PREPARE_LAUNCH = 'mirrord/prepareLaunch';
export const END_SESSION = 'mirrord/endSession';
export const SESSIONS = 'mirrord/sessions';
export const PICK_TARGET = 'mirrord/pickTarget';
export const PROGRESS = 'mirrord/progress';
export const SESSION_ENDED = 'mirrord/sessionEnded';

export interface TargetInfo {
  /** What goes in `target`: `pid/123`, `targetless`. */
  path: string;
  description: string;
}

export interface TargetList {
  targets: TargetInfo[];
}

export type DebugConfig = Record<string, unknown>;

export interface PrepareLaunchParams {
  configuration: DebugConfig;
  workspaceFolder?: string;
}

export interface PrepareLaunchResult {
  configuration: DebugConfig;
  sessionId: string | null;
}

export interface SessionRef {
  sessionId: string;
}

export interface SessionInfo {
  sessionId: string;
  target: string;
  pid: number;
  /** Milliseconds since the Unix epoch. */
  since: number;
  state: 'running' | 'ended';
}

export interface SessionList {
  sessions: SessionInfo[];
}

export interface PickTargetResult {
  target: string | null;
}

export interface ProgressParams {
  id: string;
  message: string;
  done: boolean;
}

export interface SessionEndedParams {
  sessionId: string;
  reason: string;
}
