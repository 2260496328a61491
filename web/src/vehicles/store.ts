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

export class VehicleStore {
  readonly byPlate = new Map<string, VehicleRec>();
  /** open visits: plate -> station id -> entered at (ms), also for vehicles not yet seen. */
  readonly visits = new Map<string, Map<string, number>>();
  /** bumped on every change, for views that redraw when it moves. */
  version = 0;
  private listeners = new Set<() => void>();

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

  entered(plate: string, station: string, at: number, notify = true): void {
    let m = this.visits.get(plate);
    if (!m) { m = new Map(); this.visits.set(plate, m); }
    m.set(station, at);
    if (notify) this.changed();
  }

  exited(plate: string, station: string): void {
    const m = this.visits.get(plate);
    if (!m || !m.delete(station)) return;
    if (m.size === 0) this.visits.delete(plate);
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
