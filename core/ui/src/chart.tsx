// Bandwidth over time, drawn with uPlot from rows of the fleet usage API (by=hour|day):
// what the edges served, what they fetched over the WAN, and the WAN bytes saved. The
// canvas has a text alternative (the figures over the range), and the numbers are in
// the tables beside it.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { bytes } from './format';

export interface UsageRow {
  time?: string;
  served_bytes: number;
  hit_bytes: number;
  fetched_bytes: number;
  prefetched_bytes: number;
  saved_bytes: number;
  hit_ratio: number | null;
  requests: number;
  [key: string]: unknown;
}

export function UsageChart({ rows, title }: { rows: UsageRow[]; title: string }) {
  const box = useRef<HTMLDivElement>(null);
  const sum = (f: (r: UsageRow) => number) => rows.reduce((a, r) => a + f(r), 0);
  const served = sum((r) => r.served_bytes);
  const wan = sum((r) => r.fetched_bytes + r.prefetched_bytes);
  const saved = sum((r) => r.saved_bytes);
  useEffect(() => {
    if (!box.current) return;
    const data: uPlot.AlignedData = [
      rows.map((r) => Date.parse(r.time || '') / 1000),
      rows.map((r) => r.served_bytes),
      rows.map((r) => r.fetched_bytes + r.prefetched_bytes),
      rows.map((r) => r.saved_bytes),
    ];
    const size = () => ({ width: Math.max(280, Math.min(box.current!.clientWidth, 1150)), height: 240 });
    const plot = new uPlot(
      {
        ...size(),
        series: [
          {},
          { label: 'Served', stroke: '#0b5cad', width: 2 },
          { label: 'From the WAN', stroke: '#a4000f', width: 2 },
          { label: 'WAN saved', stroke: '#1b6e35', fill: 'rgba(27,110,53,.12)', width: 2 },
        ],
        axes: [{}, { size: 70, values: (_u, ticks) => ticks.map((t) => bytes(t)) }],
        legend: { live: false },
      },
      data,
      box.current,
    );
    const resize = () => plot.setSize(size());
    addEventListener('resize', resize);
    return () => {
      removeEventListener('resize', resize);
      plot.destroy();
    };
  }, [rows]);
  const summary = `${title}: served ${bytes(served)}, ${bytes(wan)} from the WAN, ${bytes(saved)} of WAN traffic saved`;
  return (
    <figure class="chart">
      <div ref={box} role="img" aria-label={summary} data-testid="usage-chart" />
      <figcaption>{summary}</figcaption>
    </figure>
  );
}
