import { describe, expect, it } from 'vitest';
import { VehicleStore } from './store';

describe('VehicleStore', () => {
  it('keeps the latest fix by fix time and animates towards it', () => {
    let now = 1000;
    const s = new VehicleStore(600_000, () => now);
    s.fix('A', { lat: 0, lng: 0, speed_kmh: 20, fix_time: new Date(0).toISOString() });
    s.fix('A', { lat: 1, lng: 2, speed_kmh: 20, course_deg: 90, fix_time: new Date(2000).toISOString() });
    s.fix('A', { lat: 9, lng: 9, speed_kmh: 20, fix_time: new Date(1000).toISOString() }); // older: ignored
    const v = s.byPlate.get('A')!;
    expect([v.lat, v.lng, v.course]).toEqual([1, 2, 90]);
    now = 2000;
    expect(s.drawnAt(v, now)).toEqual([0.5, 1]);
    now = 4000;
    expect(s.drawnAt(v, now)).toEqual([1, 2]);
  });

  it('classifies moving, parked, at a station and offline', () => {
    let now = 0;
    const s = new VehicleStore(600_000, () => now);
    s.fix('M', { lat: 0, lng: 0, speed_kmh: 30, fix_time: new Date(0).toISOString() });
    s.fix('P', { lat: 0, lng: 0, speed_kmh: 0, fix_time: new Date(0).toISOString() });
    s.entered('P', 'S1', 0, 'v1');
    const m = s.byPlate.get('M')!, p = s.byPlate.get('P')!;
    expect(s.state(m)).toBe('moving');
    expect(s.state(p)).toBe('station');
    s.exited('P', 'S1', 'v1');
    expect(s.state(p)).toBe('parked');
    now = 600_001;
    expect(s.state(m)).toBe('offline');
  });

  it('decides a visits list read behind the live events by visit id', () => {
    const s = new VehicleStore(600_000, () => 0);
    s.entered('A', 'S1', 0, 'a1');
    s.entered('B', 'S1', 0, 'b1'); // B's exit was missed while away
    const mark = s.mark();
    s.exited('A', 'S1', 'a1'); // live, before the read model has it
    s.entered('C', 'S2', 5, 'c1'); // live, not in the read model yet
    s.loadVisits([
      { visit_id: 'a1', vehicle: 'A', station_id: 'S1', entered_at: new Date(0).toISOString() },
      { visit_id: 'd1', vehicle: 'D', station_id: 'S2', entered_at: new Date(3).toISOString() },
    ], mark);
    expect([...s.stationsOf('A').keys()]).toEqual([]);
    expect([...s.stationsOf('B').keys()]).toEqual([]);
    expect([...s.stationsOf('C').keys()]).toEqual(['S2']);
    expect([...s.stationsOf('D').entries()]).toEqual([['S2', 3]]);
  });
});
