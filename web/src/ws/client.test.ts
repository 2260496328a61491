import { describe, expect, it } from 'vitest';
import { TmsSocket, backoffDelay, type ConnState, type Frame, type SocketLike } from './client';
import { BBoxSubscriber, needsResubscribe, widen, type BBox } from './bbox';

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: string[] = [];
  closed = false;
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {}
  send(d: string) { this.sent.push(d); }
  close() { this.closed = true; this.readyState = 3; }
  open() { this.readyState = 1; this.onopen?.({}); }
  drop(code = 1006) { this.readyState = 3; this.onclose?.({ code, reason: '' }); }
  frame(f: object) { this.onmessage?.({ data: JSON.stringify(f) }); }
}

function harness(check?: () => Promise<'ok' | 'refused' | 'unreachable'>) {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const states: ConnState[] = [];
  const frames: Frame[] = [];
  const client = new TmsSocket({
    url: 'ws://h/api/v1/ws', token: 't ok',
    onFrame: (f) => frames.push(f),
    onState: (s) => states.push(s),
    checkToken: check,
    factory: (u) => { const s = new FakeSocket(u); sockets.push(s); return s; },
    backoff: { initialMs: 1000, maxMs: 8000 },
    random: () => 1,
    now: () => 0,
    setTimer: (fn, ms) => { timers.push({ fn, ms }); return timers.length; },
    clearTimer: () => {},
  });
  return { client, sockets, timers, states, frames };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('TmsSocket', () => {
  it('connects with the token as access_token and passes frames on', () => {
    const h = harness();
    h.client.start();
    expect(h.sockets[0].url).toBe('ws://h/api/v1/ws?access_token=t%20ok');
    h.sockets[0].open();
    h.sockets[0].frame({ type: 'event', seq: 1 });
    h.sockets[0].onmessage?.({ data: 'not json' });
    expect(h.frames).toEqual([{ type: 'event', seq: 1 }]);
    expect(h.states.map((s) => s.kind)).toEqual(['connecting', 'connected']);
  });

  it('sends the subscription on open and again after a reconnect', async () => {
    const h = harness(async () => 'ok');
    h.client.subscribe({ bbox: [1, 2, 3, 4] });
    h.client.start();
    h.sockets[0].open();
    expect(h.sockets[0].sent).toEqual(['{"subscribe":{"bbox":[1,2,3,4]}}']);
    h.client.subscribe({ bbox: [5, 6, 7, 8] });
    expect(h.sockets[0].sent).toHaveLength(2);
    h.sockets[0].drop();
    await flush();
    expect(h.states.at(-1)).toMatchObject({ kind: 'reconnecting', attempt: 1 });
    h.timers.at(-1)!.fn();
    h.sockets[1].open();
    expect(h.sockets[1].sent).toEqual(['{"subscribe":{"bbox":[5,6,7,8]}}']);
  });

  it('backs off exponentially, capped, and resets after a successful open', async () => {
    const h = harness(async () => 'unreachable');
    h.client.start();
    for (let i = 0; i < 6; i++) {
      h.sockets.at(-1)!.drop();
      await flush();
      h.timers.at(-1)!.fn();
    }
    expect(h.timers.map((t) => t.ms)).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    h.sockets.at(-1)!.open();
    h.sockets.at(-1)!.drop();
    await flush();
    expect(h.timers.at(-1)!.ms).toBe(1000);
  });

  it('jitters the delay between half and all of it', () => {
    const b = { initialMs: 1000, maxMs: 30000 };
    expect(backoffDelay(2, b, () => 0)).toBe(2000);
    expect(backoffDelay(2, b, () => 1)).toBe(4000);
    expect(backoffDelay(50, b, () => 1)).toBe(30000);
  });

  it('stops and says so when the token is refused', async () => {
    const h = harness(async () => 'refused');
    h.client.start();
    h.sockets[0].drop();
    await flush();
    expect(h.states.at(-1)).toEqual({ kind: 'refused' });
    expect(h.timers).toHaveLength(0);
  });

  it('does not check the token when a connection that was open drops', async () => {
    let checks = 0;
    const h = harness(async () => { checks++; return 'refused'; });
    h.client.start();
    h.sockets[0].open();
    h.sockets[0].drop(1001);
    await flush();
    expect(checks).toBe(0);
    expect(h.states.at(-1)?.kind).toBe('reconnecting');
  });

  it('close stops reconnecting and ignores the old socket', async () => {
    const h = harness(async () => 'ok');
    h.client.start();
    h.sockets[0].open();
    const s = h.sockets[0];
    h.client.close();
    expect(s.closed).toBe(true);
    s.drop();
    await flush();
    expect(h.timers).toHaveLength(0);
    expect(h.client.send({ x: 1 })).toBe(false);
  });
});

describe('bbox subscription', () => {
  it('widens by a margin, clamped to the world', () => {
    expect(widen([10, 10, 12, 11], 0.5)).toEqual([9, 9.5, 13, 11.5]);
    expect(widen([-179, -89, 179, 89], 1)).toEqual([-180, -90, 180, 90]);
  });

  it('resubscribes only when the view leaves the box or the zoom changes a lot', () => {
    const sub = { box: [0, 0, 10, 10] as BBox, zoom: 10 };
    expect(needsResubscribe(null, [1, 1, 2, 2], 10)).toBe(true);
    expect(needsResubscribe(sub, [1, 1, 2, 2], 11)).toBe(false);
    expect(needsResubscribe(sub, [9, 9, 11, 11], 10)).toBe(true);
    expect(needsResubscribe(sub, [1, 1, 2, 2], 12)).toBe(true);
  });

  it('sends at most once per interval, the latest view winning', () => {
    let t = 0;
    const sent: BBox[] = [];
    const timers: (() => void)[] = [];
    const s = new BBoxSubscriber((b) => sent.push(b), { margin: 0, minIntervalMs: 500, zoomStep: 2 }, () => t, (fn) => timers.push(fn));
    s.view([0, 0, 1, 1], 10);
    s.view([5, 5, 6, 6], 10);
    s.view([7, 7, 8, 8], 10);
    expect(sent).toEqual([[0, 0, 1, 1]]);
    expect(timers).toHaveLength(1);
    t = 500;
    timers[0]();
    expect(sent).toEqual([[0, 0, 1, 1], [7, 7, 8, 8]]);
    s.view([7.2, 7.2, 7.8, 7.8], 10);
    expect(sent).toHaveLength(2);
  });
});
