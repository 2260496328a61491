// The vehicles the page knows of: each one's latest fix (by fix time, as
// the protocol asks: the snapshot and live events overlap), the stations it
// is in now, and what its drawn position is animating from. The layer and
// the panels read it; the sockets write it.

export type VehicleState = 'moving' | 'parked' | 'station' | 'offline';

export const stateLabels: Record<VehicleState, string> = {
  moving: 'moving', parked: 'parked', station: 'at a station', offline: 'offline',
};

/** Below this speed a vehicle counts as parked. */
export const movingKmh = 3;
/** Longest animation between two fixes: a longer silence jumps. */
export const maxAnimMs = 10_000;

export interface Fix { lat: number; lng: number; speed_kmh: number; course_deg?: number | null; fix_time: string }

export interface VehicleRec {
  plate: string;
  lat: number; lng: number; speed: number; course: number | null; fixTime: number;
  fromLat: number; fromLng: number; animStart: number; animDur: number;
}

/** How many exited visit ids the store remembers (see VehicleStore.exited). */
export const maxClosedVisits = 20_000;

interface OpenVisit { plate: string; station: string; at: number; seq: number }

export class VehicleStore {
  readonly byPlate = new Map<string, VehicleRec>();
  /** open visits: plate -> station id -> entered at (ms), also for vehicles not yet seen. */
  readonly visits = new Map<string, Map<string, number>>();
  /** bumped on every change, for views that redraw when it moves. */
  version = 0;
  private listeners = new Set<() => void>();
  // The open visits by visit id, each with the order it was learnt in,
  // and the ids of visits seen to end. Live events reach the page before
  // the read model has them (the socket reads the topic, the visits
  // list the projection), so a visits list loaded while events arrive may
  // still hold a visit the page saw end, or lack one it saw begin: both
  // are decided by visit id (see loadVisits).
  private open = new Map<string, OpenVisit>();
  private closed = new Set<string>();
  private seq = 0;

  constructor(public offlineAfterMs: number, private readonly now: () => number = Date.now) {}

  onChange(fn: () => void): () => void { this.listeners.add(fn); return () => this.listeners.delete(fn); }
  private changed(): void { this.version++; for (const fn of this.listeners) fn(); }

  /** fix records a position; an older fix than the one held is ignored. */
  fix(plate: string, f: Fix, notify = true): void {
    const t = Date.parse(f.fix_time);
    const now = this.now();
    let v = this.byPlate.get(plate);
    if (!v) {
      v = { plate, lat: f.lat, lng: f.lng, speed: f.speed_kmh, course: f.course_deg ?? null, fixTime: t,
        fromLat: f.lat, fromLng: f.lng, animStart: now, animDur: 0 };
      this.byPlate.set(plate, v);
    } else {
      if (t <= v.fixTime) return;
      const [cl, cg] = this.drawnAt(v, now);
      v.fromLat = cl; v.fromLng = cg;
      v.animStart = now;
      v.animDur = Math.min(maxAnimMs, t - v.fixTime);
      v.lat = f.lat; v.lng = f.lng; v.speed = f.speed_kmh; v.fixTime = t;
      if (f.course_deg != null) v.course = f.course_deg;
    }
    if (notify) this.changed();
  }

  /** flush notifies listeners after fixes recorded with notify=false. */
  flush(): void { this.changed(); }

  /** entered records that plate entered station at (ms) in visit visitId. */
  entered(plate: string, station: string, at: number, visitId: string, notify = true): void {
    if (this.closed.has(visitId)) return;
    this.open.set(visitId, { plate, station, at, seq: ++this.seq });
    let m = this.visits.get(plate);
    if (!m) { m = new Map(); this.visits.set(plate, m); }
    m.set(station, at);
    if (notify) this.changed();
  }

  /** exited records that visit visitId (plate in station) ended; the id is remembered so that a visits list read before the end cannot open it again. */
  exited(plate: string, station: string, visitId: string, notify = true): void {
    this.closed.add(visitId);
    if (this.closed.size > maxClosedVisits) this.closed.delete(this.closed.values().next().value as string);
    this.open.delete(visitId);
    const m = this.visits.get(plate);
    if (!m || !m.delete(station)) return;
    if (m.size === 0) this.visits.delete(plate);
    if (notify) this.changed();
  }

  /** mark is where loadVisits starts from: take it before asking the API for the open visits. */
  mark(): number { return this.seq; }

  /**
   * loadVisits makes list (GET /visits?open=true, asked for after mark) the
   * open visits, keeping what live events said since: a visit seen to end
   * stays ended, and a visit learnt after mark stays open even when the
   * list (read from a read model a little behind the socket) lacks it.
   */
  loadVisits(list: { visit_id: string; vehicle: string; station_id: string; entered_at: string }[], mark: number): void {
    const listed = new Set(list.map((v) => v.visit_id));
    for (const [id, v] of this.open) {
      if (v.seq <= mark && !listed.has(id)) this.exited(v.plate, v.station, id, false);
    }
    for (const v of list) {
      if (!this.open.has(v.visit_id)) this.entered(v.vehicle, v.station_id, Date.parse(v.entered_at), v.visit_id, false);
    }
    this.changed();
  }

  /** stationsOf is the stations plate is in now, with when it entered each. */
  stationsOf(plate: string): Map<string, number> { return this.visits.get(plate) ?? new Map(); }

  state(v: VehicleRec, now = this.now()): VehicleState {
    if (now - v.fixTime > this.offlineAfterMs) return 'offline';
    if ((this.visits.get(v.plate)?.size ?? 0) > 0) return 'station';
    return v.speed >= movingKmh ? 'moving' : 'parked';
  }

  /** drawnAt is where v is drawn at now: between its previous drawn place and its fix. */
  drawnAt(v: VehicleRec, now: number): [number, number] {
    if (v.animDur <= 0) return [v.lat, v.lng];
    const k = (now - v.animStart) / v.animDur;
    if (k >= 1) return [v.lat, v.lng];
    return [v.fromLat + (v.lat - v.fromLat) * k, v.fromLng + (v.lng - v.fromLng) * k];
  }

  animating(v: VehicleRec, now: number): boolean { return v.animDur > 0 && now - v.animStart < v.animDur; }
}
