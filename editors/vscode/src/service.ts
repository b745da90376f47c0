// The IDE service's methods over any JSON-RPC connection (the language
// client in VS Code, a plain protocol connection in tests).

import {
  END_SESSION,
  LIST_TARGETS,
  PREPARE_LAUNCH,
  SESSIONS,
  type DebugConfig,
  type PrepareLaunchResult,
  type SessionList,
  type TargetList,
} from './protocol';

/** The part of a JSON-RPC connection the service needs. */
export interface Rpc {
  sendRequest<R>(method: string, params?: unknown): Promise<R>;
}

export class MirrordService {
  constructor(private readonly rpc: Rpc) {}

  listTargets(): Promise<TargetList> {
    return this.rpc.sendRequest<TargetList>(LIST_TARGETS);
  }

  prepareLaunch(configuration: DebugConfig, workspaceFolder?: string): Promise<PrepareLaunchResult> {
    return this.rpc.sendRequest<PrepareLaunchResult>(PREPARE_LAUNCH, { configuration, workspaceFolder });
  }

  async endSession(sessionId: string): Promise<void> {
    await this.rpc.sendRequest<null>(END_SESSION, { sessionId });
  }

  sessions(): Promise<SessionList> {
    return this.rpc.sendRequest<SessionList>(SESSIONS);
  }
}
