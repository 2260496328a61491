// The live socket, off the page's thread (see live.ts). The page sends
// {start: {url, token, everyMs}} once and {subscribe: filter} as the map
// moves; the worker answers {state} as the connection changes and
// {fixes} every everyMs when positions arrived.

import { TmsSocket } from './client';
import { LiveBatcher } from './live';

interface Scope { onmessage: ((ev: MessageEvent) => void) | null; postMessage(m: unknown): void }
const scope = self as unknown as Scope;

let sock: TmsSocket | null = null;
const batch = new LiveBatcher();

scope.onmessage = (ev) => {
  const m = ev.data as { start?: { url: string; token: string; everyMs: number }; subscribe?: unknown };
  if (m.start && !sock) {
    const { url, token, everyMs } = m.start;
    sock = new TmsSocket({
      url, token,
      checkToken: async () => {
        try {
          const res = await fetch('/api/v1/session', { headers: { Authorization: `Bearer ${token}` } });
          return res.status === 401 ? 'refused' : res.ok ? 'ok' : 'unreachable';
        } catch { return 'unreachable'; }
      },
      onState: (state) => scope.postMessage({ state }),
      onFrame: (f) => batch.add(f),
    });
    sock.start();
    setInterval(() => {
      const fixes = batch.take();
      if (fixes) scope.postMessage({ fixes });
    }, everyMs);
  } else if (m.subscribe !== undefined) {
    sock?.subscribe(m.subscribe);
  }
};
