import { describe, expect, it } from 'vitest';
import { T, eventTime, type CloudEvent } from './events';

const ev = (type: string, data: Record<string, unknown>): CloudEvent => ({ id: '1', type, time: '2026-01-01T10:00:00Z', data });

describe('eventTime', () => {
  it("takes each type's own time member", () => {
    expect(eventTime(ev(T.entered, { fix_time: '2026-01-01T09:00:00Z' }))).toBe(Date.parse('2026-01-01T09:00:00Z'));
    expect(eventTime(ev(T.jobArrived, { arrived_at: '2026-01-01T09:30:00Z', at: { lat: 31, lng: 121 } })))
      .toBe(Date.parse('2026-01-01T09:30:00Z'));
  });

  it("falls back to the envelope's time for a missing or unreadable member", () => {
    expect(eventTime(ev(T.jobCompleted, {}))).toBe(Date.parse('2026-01-01T10:00:00Z'));
    expect(eventTime(ev(T.jobDeparted, { departed_at: { lat: 1 } }))).toBe(Date.parse('2026-01-01T10:00:00Z'));
  });
});
