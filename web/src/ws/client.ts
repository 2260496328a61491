// The WebSocket client: one reconnecting connection to /api/v1/ws. It
// authenticates with access_token (browsers cannot set headers on an
// upgrade), reconnects after any close with capped, jittered exponential
// backoff, sends the subscription in force again after each reconnect, and
// reports its state (connecting, connected, reconnecting in N s, token
// refused) for the page to show. The server refuses a bad token before the
// upgrade, which a page sees only as a failed connection; so when a
// connection fails without ever opening, the client asks checkToken whether
// the token is still good before trying again.
//
// The socket is injected (SocketFactory), so that the tests drive it with a
// fake; timers and randomness too.

export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type SocketFactory = (url: string) => SocketLike;

export type ConnState =
  | { kind: 'connecting' }
  | { kind: 'connected' }
  | { kind: 'reconnecting'; at: number; attempt: number }
  | { kind: 'refused' }
  | { kind: 'closed' };

export interface Frame {
  type: string;
  seq: number;
  [k: string]: unknown;
}

export type TokenCheck = () => Promise<'ok' | 'refused' | 'unreachable'>;

export interface Backoff { initialMs: number; maxMs: number }

export interface ClientOptions {
  /** ws:// or wss:// URL of /api/v1/ws, without the token. */
  url: string;
  token: string;
  onFrame: (f: Frame) => void;
  onState?: (s: ConnState) => void;
  /** Called on every open, after the subscription (if any) was sent. */
  onOpen?: () => void;
  checkToken?: TokenCheck;
  factory?: SocketFactory;
  backoff?: Backoff;
  random?: () => number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

const OPEN = 1;

/** backoffDelay is attempt n's wait: initial·2ⁿ capped at max, times a jitter of 0.5 to 1. */
export function backoffDelay(attempt: number, b: Backoff, random: () => number): number {
  const base = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.5 + random() / 2));
}

export class TmsSocket {
  private sock: SocketLike | null = null;
  private subscription: unknown = null;
  private attempt = 0;
  private timer: unknown = null;
  private stopped = false;
  private opened = false;
  private state: ConnState = { kind: 'closed' };
  private readonly o: Required<Omit<ClientOptions, 'onOpen' | 'checkToken' | 'onState'>> & ClientOptions;

  constructor(opts: ClientOptions) {
    this.o = {
      factory: (u) => new WebSocket(u) as unknown as SocketLike,
      backoff: { initialMs: 1000, maxMs: 30000 },
      random: Math.random,
      now: Date.now,
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
      ...opts,
    };
  }

  get connState(): ConnState { return this.state; }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** close stops the client for good (logout, page teardown). */
  close(): void {
    this.stopped = true;
    if (this.timer !== null) this.o.clearTimer(this.timer);
    this.timer = null;
    const s = this.sock;
    this.sock = null;
    if (s) { s.onclose = null; s.onmessage = null; s.onerror = null; s.onopen = null; s.close(1000, 'closed'); }
    this.setState({ kind: 'closed' });
  }

  /** subscribe sets the subscription in force: sent now if connected, and after every reconnect. */
  subscribe(filter: unknown): void {
    this.subscription = filter;
    this.send({ subscribe: filter });
  }

  /** send sends msg if connected; it reports whether it did. */
  send(msg: unknown): boolean {
    if (!this.sock || this.sock.readyState !== OPEN) return false;
    this.sock.send(JSON.stringify(msg));
    return true;
  }

  /** reconnectNow skips the wait of a pending reconnect (a "retry now" button). */
  reconnectNow(): void {
    if (this.stopped || this.state.kind !== 'reconnecting') return;
    if (this.timer !== null) this.o.clearTimer(this.timer);
    this.timer = null;
    this.connect();
  }

  private setState(s: ConnState): void {
    this.state = s;
    this.o.onState?.(s);
  }

  private connect(): void {
    this.setState({ kind: 'connecting' });
    this.opened = false;
    const sep = this.o.url.includes('?') ? '&' : '?';
    const s = this.o.factory(`${this.o.url}${sep}access_token=${encodeURIComponent(this.o.token)}`);
    this.sock = s;
    s.onopen = () => {
      if (this.sock !== s) return;
      this.opened = true;
      this.attempt = 0;
      this.setState({ kind: 'connected' });
      if (this.subscription !== null) s.send(JSON.stringify({ subscribe: this.subscription }));
      this.o.onOpen?.();
    };
    s.onmessage = (ev) => {
      if (this.sock !== s || typeof ev.data !== 'string') return;
      let f: Frame;
      try { f = JSON.parse(ev.data) as Frame; } catch { return; }
      this.o.onFrame(f);
    };
    s.onerror = () => { /* onclose follows */ };
    s.onclose = () => {
      if (this.sock !== s) return;
      this.sock = null;
      if (this.stopped) return;
      void this.afterClose(!this.opened);
    };
  }

  private async afterClose(neverOpened: boolean): Promise<void> {
    if (neverOpened && this.o.checkToken) {
      const verdict = await this.o.checkToken().catch(() => 'unreachable' as const);
      if (this.stopped) return;
      if (verdict === 'refused') {
        this.stopped = true;
        this.setState({ kind: 'refused' });
        return;
      }
    }
    const delay = backoffDelay(this.attempt, this.o.backoff, this.o.random);
    this.attempt++;
    this.setState({ kind: 'reconnecting', at: this.o.now() + delay, attempt: this.attempt });
    this.timer = this.o.setTimer(() => {
      this.timer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }
}

/** wsURL is the WebSocket URL of path on the page's own host. */
export function wsURL(path: string, loc: { protocol: string; host: string } = location): string {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}${path}`;
}
