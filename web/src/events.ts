// The event types the page subscribes to, and a small bus that hands the
// feed socket's events to the panels.

export const T = {
  position: 'tms.position.reported.v1',
  entered: 'tms.vehicle.entered_station.v1',
  exited: 'tms.vehicle.exited_station.v1',
  alert: 'tms.alert.raised.v1',
  stationUpserted: 'tms.station.upserted.v1',
  stationDeleted: 'tms.station.deleted.v1',
  jobCreated: 'tms.job.created.v1',
  jobStarted: 'tms.job.started.v1',
  jobArrived: 'tms.job.stop_arrived.v1',
  jobDeparted: 'tms.job.stop_departed.v1',
  jobCompleted: 'tms.job.completed.v1',
  jobCancelled: 'tms.job.cancelled.v1',
  jobAmended: 'tms.job.amended.v1',
} as const;

export const jobTypes = [T.jobCreated, T.jobStarted, T.jobArrived, T.jobDeparted, T.jobCompleted, T.jobCancelled, T.jobAmended];

export interface CloudEvent {
  id: string; type: string; subject?: string; time: string; source?: string;
  data: Record<string, unknown> & { vehicle?: string; lat?: number; lng?: number; station_id?: string; visit_id?: string; fix_time?: string };
}

export class Bus<E> {
  private fns = new Set<(e: E) => void>();
  on(fn: (e: E) => void): () => void { this.fns.add(fn); return () => this.fns.delete(fn); }
  emit(e: E): void { for (const fn of this.fns) fn(e); }
}

// The data member that says when each event happened; the envelope's time
// (when tms decided it) stands in for one that is missing or unreadable.
const timeMembers: Record<string, string> = {
  [T.position]: 'fix_time', [T.entered]: 'fix_time', [T.exited]: 'fix_time', [T.alert]: 'fix_time',
  [T.jobCreated]: 'created_at', [T.jobStarted]: 'started_at', [T.jobArrived]: 'arrived_at',
  [T.jobDeparted]: 'departed_at', [T.jobCompleted]: 'completed_at', [T.jobCancelled]: 'cancelled_at',
};

/** eventTime is when e happened, in ms. */
export function eventTime(e: CloudEvent): number {
  const member = timeMembers[e.type];
  const t = member ? Date.parse(String(e.data[member] ?? '')) : NaN;
  return Number.isFinite(t) ? t : Date.parse(e.time);
}
