// How sessions are shown in "Show Sessions".

import type { SessionInfo } from './protocol';

export function describeSession(session: SessionInfo, now: number): { label: string; description: string } {
  const seconds = Math.max(0, Math.round((now - session.since) / 1000));
  const age = seconds < 60 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
  return {
    label: `${session.target} (${session.state})`,
    description: `session ${session.sessionId} · intproxy ${session.pid} · started ${age} ago`,
  };
}
