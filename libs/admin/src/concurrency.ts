/** Concurrency from session intervals, clipped to a range (FerretDB cannot aggregate this). */
export interface Interval {
  start: number;
  end: number;
}

export interface Concurrency {
  average: number;
  max: number;
}

/**
 * Average = total clipped session time / range length; max = the largest number of sessions open at
 * one instant inside the range. An interval touching the range only at an edge counts at that edge.
 */
export function concurrency(intervals: Interval[], rangeStart: number, rangeEnd: number): Concurrency {
  const span = rangeEnd - rangeStart;
  const clipped = intervals
    .map(({ start, end }) => ({ start: Math.max(start, rangeStart), end: Math.min(end, rangeEnd) }))
    .filter(({ start, end }) => end >= start);
  if (clipped.length === 0) return { average: 0, max: 0 };
  const covered = clipped.reduce((sum, { start, end }) => sum + (end - start), 0);
  // Starts before ends at the same instant: sessions that meet at a point overlap there.
  const events = clipped.flatMap(({ start, end }) => [
    { at: start, delta: 1 },
    { at: end, delta: -1 },
  ]);
  events.sort((a, b) => a.at - b.at || b.delta - a.delta);
  let open = 0;
  let max = 0;
  for (const event of events) {
    open += event.delta;
    max = Math.max(max, open);
  }
  return { average: span > 0 ? round(covered / span) : clipped.length, max };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
