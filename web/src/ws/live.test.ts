import { describe, expect, it } from 'vitest';
import { LiveBatcher } from './live';

const pos = (plate: string, t: string, lat = 31) => ({
  type: 'event', seq: 1,
  event: { type: 'tms.position.reported.v1', subject: plate, data: { vehicle: plate, lat, lng: 121, speed_kmh: 10, course_deg: 90, fix_time: t } },
});

describe('LiveBatcher', () => {
  it('hands over the newest fix of each vehicle once', () => {
    const b = new LiveBatcher();
    b.add({ type: 'snapshot', seq: 1, vehicles: [{ plate: 'A', lat: 30, lng: 121, speed_kmh: 0, fix_time: '2026-01-01T10:00:00Z' }] });
    b.add(pos('A', '2026-01-01T10:00:05Z', 31));
    b.add(pos('A', '2026-01-01T10:00:03Z', 32)); // older: the snapshot and events overlap
    b.add(pos('B', '2026-01-01T10:00:01Z'));
    b.add({ type: 'event', seq: 2, event: { type: 'tms.vehicle.entered_station.v1', subject: 'A', data: { vehicle: 'A' } } });
    const got = new Map(b.take());
    expect([...got.keys()].sort()).toEqual(['A', 'B']);
    expect(got.get('A')).toEqual({ lat: 31, lng: 121, speed_kmh: 10, course_deg: 90, fix_time: '2026-01-01T10:00:05Z' });
    expect(b.take()).toBeNull();
  });

  it('ignores malformed rows instead of passing them on', () => {
    const b = new LiveBatcher();
    b.add(pos('', '2026-01-01T10:00:05Z'));
    b.add(pos('C', 'not a time'));
    b.add({ type: 'snapshot', seq: 1, vehicles: [{ plate: 'D', lat: 'x', lng: 121, fix_time: '2026-01-01T10:00:00Z' }] });
    expect(b.take()).toBeNull();
  });
});
