// The live socket's positions, gathered between two hand-overs to the
// page: for each vehicle only its newest fix (by fix time, as the protocol
// asks: a snapshot and the events after it overlap). The live socket runs
// in a worker (live.worker.ts): with ten thousand vehicles in view two
// thousand frames a second arrive, and parsing them on the page's own
// thread would take its frames; the page gets the gathered fixes a few
// times a second instead.

import type { Frame } from './client';

/** A position as the page draws it: the members of a snapshot row or a tms.position.reported.v1 event's data it uses. */
export interface LiveFix { lat: number; lng: number; speed_kmh: number; course_deg?: number | null; fix_time: string }

const positionType = 'tms.position.reported.v1';

export class LiveBatcher {
  private fixes = new Map<string, LiveFix & { t: number }>();

  /** add takes one frame of the live socket; frames other than snapshots and position events are not its business. */
  add(f: Frame): void {
    if (f.type === 'snapshot' && Array.isArray(f.vehicles)) {
      for (const v of f.vehicles as (LiveFix & { plate: string })[]) this.put(v.plate, v);
    } else if (f.type === 'event') {
      const e = f.event as { type?: string; subject?: string; data?: LiveFix & { vehicle?: string } } | undefined;
      if (e?.type === positionType && e.data) this.put(e.data.vehicle ?? e.subject ?? '', e.data);
    }
  }

  private put(plate: string, f: LiveFix): void {
    const t = Date.parse(f.fix_time);
    if (!plate || !Number.isFinite(t) || typeof f.lat !== 'number' || typeof f.lng !== 'number') return;
    const cur = this.fixes.get(plate);
    if (cur && cur.t >= t) return;
    this.fixes.set(plate, { lat: f.lat, lng: f.lng, speed_kmh: f.speed_kmh, course_deg: f.course_deg ?? null, fix_time: f.fix_time, t });
  }

  /** take hands over what was gathered since the last take (plate, fix pairs), or null when nothing was. */
  take(): [string, LiveFix][] | null {
    if (this.fixes.size === 0) return null;
    const out: [string, LiveFix][] = [];
    for (const [plate, { t: _t, ...fix }] of this.fixes) out.push([plate, fix]);
    this.fixes.clear();
    return out;
  }
}
