import { useEffect, useState } from 'preact/hooks';
import { get, post } from '../api';
import { UsageChart, UsageRow } from '../chart';
import { bytes } from '../format';
import { useAction, useLoad } from '../hooks';

interface EdgeStatus {
  state: string;
  last_report: string | null;
  version?: string;
  draining?: boolean;
  cache?: { used: number; budget: number; blobs: number; pinned_bytes: number };
  last_24h?: { served_bytes: number; hit_ratio: number | null; saved_bytes: number; stale_serves: number };
}

interface Edge {
  name: string;
  site: string;
  state: string;
  last_seen: string | null;
  settings: Record<string, unknown>;
  status?: EdgeStatus;
}

interface Usage {
  from: string;
  to: string;
  rows: UsageRow[];
}

interface Command {
  id: number;
  kind: string;
  args: Record<string, unknown>;
  state: string;
  actor: string;
  created_at: string | null;
  done_at: string | null;
  result: unknown;
  error: string | null;
}

// The ranges offered: hourly rows for a day or a week, day rows for a month.
const TIME_ROWS: Record<string, string> = { '24h': 'hour', '7d': 'hour', '30d': 'day' };
// The usage query over range, grouped by (the range's own time rows when "time").
function usage(range: string, by: string): string {
  return `by=${by === 'time' ? TIME_ROWS[range] : by}&from=${range}`;
}

// JSON with room to wrap (after commas and colons).
function readable(v: unknown): string {
  return JSON.stringify(v, null, 1).replace(/\n\s*/g, ' ');
}

function ratio(r: number | null | undefined): string {
  return r === null || r === undefined ? '' : `${(r * 100).toFixed(1)} %`;
}

function RangePicker({ value, onChange }: { value: string; onChange: (v: string) => void }) {
  return (
    <div>
      <label for="range">Range</label>
      <select id="range" value={value} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
        <option value="24h">last 24 hours</option>
        <option value="7d">last 7 days</option>
        <option value="30d">last 30 days</option>
      </select>
    </div>
  );
}

function UsageTable({ caption, rows, keyName, keyLabel, link }: {
  caption: string; rows: UsageRow[]; keyName: string; keyLabel: string; link?: (key: string) => string;
}) {
  return (
    <table tabIndex={0}>
      <caption>{caption}</caption>
      <thead><tr><th scope="col">{keyLabel}</th><th scope="col">Served</th><th scope="col">Hit ratio</th><th scope="col">From the WAN</th><th scope="col">WAN saved</th><th scope="col">Requests</th></tr></thead>
      <tbody>
        {rows.map((r) => {
          const key = String(r[keyName] ?? '');
          return (
            <tr key={key}>
              <td>{link ? <a href={link(key)}>{key || '(none)'}</a> : key || '(none)'}</td>
              <td>{bytes(r.served_bytes)}</td><td>{ratio(r.hit_ratio)}</td>
              <td>{bytes(r.fetched_bytes + r.prefetched_bytes)}</td><td>{bytes(r.saved_bytes)}</td><td>{r.requests}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

// The fleet (administrators): GET /api/v1/edges (each with its status), and
// GET /api/v1/fleet/usage over time for the fleet, a site (site=) or a repository
// (repository=), with the figures per site and per repository.
export function Fleet() {
  const [range, setRange] = useState('24h');
  const [focus, setFocus] = useState('');  // "", "site=<s>" or "repository=<r>"
  const edges = useLoad(() => get<{ edges: Edge[] }>('/api/v1/edges').then((r) => r.edges), []);
  const series = useLoad(() => get<Usage>(`/api/v1/fleet/usage?${usage(range, 'time')}${focus ? '&' + focus : ''}`), [range, focus]);
  const sites = useLoad(() => get<Usage>(`/api/v1/fleet/usage?${usage(range, 'site')}`), [range]);
  const repos = useLoad(() => get<Usage>(`/api/v1/fleet/usage?${usage(range, 'repo')}`), [range]);
  const error = edges.error || series.error || sites.error || repos.error;
  const focusLabel = focus ? focus.replace('=', ' ').replace(/%2F/g, '/') : 'the whole fleet';
  return (
    <section>
      <h1>Fleet</h1>
      {error && <p role="alert" class="error">{error}</p>}
      <table tabIndex={0}>
        <caption>Edges</caption>
        <thead>
          <tr><th scope="col">Edge</th><th scope="col">Site</th><th scope="col">State</th><th scope="col">Last report</th><th scope="col">Version</th>
            <th scope="col">Cache used / budget</th><th scope="col">Hit ratio (24 h)</th><th scope="col">WAN saved (24 h)</th></tr>
        </thead>
        <tbody>
          {(edges.data || []).map((e) => {
            const s = e.status;
            return (
              <tr key={e.name}>
                <td><a href={`/ui/fleet/${encodeURIComponent(e.name)}`}>{e.name}</a></td>
                <td>{e.site}</td>
                <td class={`state-${s?.state || 'never'}`}>{e.state === 'pending' ? 'not joined' : s?.state}{s?.draining ? ' (draining)' : ''}</td>
                <td>{s?.last_report || 'never'}</td>
                <td>{s?.version || ''}</td>
                <td>{s?.cache ? `${bytes(s.cache.used)} / ${bytes(s.cache.budget)}` : ''}</td>
                <td>{ratio(s?.last_24h?.hit_ratio)}</td>
                <td>{s?.last_24h ? bytes(s.last_24h.saved_bytes) : ''}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {edges.data && edges.data.length === 0 && <p>No edges yet: <code>wharfctl edge add NAME --site SITE</code> makes a join token.</p>}
      <h2>Bandwidth</h2>
      <div class="filters">
        <RangePicker value={range} onChange={setRange} />
        <div>
          <label for="focus">Of</label>
          <select id="focus" value={focus} onChange={(e) => setFocus((e.target as HTMLSelectElement).value)}>
            <option value="">the whole fleet</option>
            {(sites.data?.rows || []).filter((r) => r.site).map((r) => (
              <option key={`s${r.site}`} value={`site=${encodeURIComponent(String(r.site))}`}>{`site ${r.site}`}</option>
            ))}
            {(repos.data?.rows || []).map((r) => (
              <option key={`r${r.repository}`} value={`repository=${encodeURIComponent(String(r.repository))}`}>{`repository ${r.repository}`}</option>
            ))}
          </select>
        </div>
      </div>
      {series.data && <UsageChart key={focus + range} rows={series.data.rows} title={`Bandwidth of ${focusLabel}`} />}
      {sites.data && <UsageTable caption="By site" rows={sites.data.rows} keyName="site" keyLabel="Site" />}
      {repos.data && <UsageTable caption="By repository" rows={repos.data.rows} keyName="repository" keyLabel="Repository" />}
    </section>
  );
}

const COMMAND_KINDS = ['purge', 'pin', 'unpin', 'prefetch', 'drain', 'resume', 'inventory', 'refresh'];
const NEEDS_IMAGE = new Set(['pin', 'unpin', 'prefetch']);

// One edge (administrators): GET /api/v1/edges/<name>, its usage over time and per
// repository (GET .../usage), and its commands with their outcomes (GET|POST .../commands),
// watched until they finish.
export function EdgePage({ name }: { name: string }) {
  const base = `/api/v1/edges/${encodeURIComponent(name)}`;
  const [range, setRange] = useState('24h');
  const edge = useLoad(() => get<Edge>(base), [name]);
  const series = useLoad(() => get<Usage>(`${base}/usage?${usage(range, 'time')}`), [name, range]);
  const repos = useLoad(() => get<Usage>(`${base}/usage?${usage(range, 'repo')}`), [name, range]);
  const commands = useLoad(() => get<{ commands: Command[] }>(`${base}/commands?limit=50`).then((r) => r.commands), [name]);
  const [form, setForm] = useState({ kind: 'purge', repository: '', reference: '' });
  const act = useAction(commands.reload);
  const pending = (commands.data || []).some((c) => c.state === 'queued' || c.state === 'delivered');
  useEffect(() => {
    if (!pending) return;
    const t = setTimeout(commands.reload, 1000);
    return () => clearTimeout(t);
  }, [commands.data]);
  const send = (e: Event) => {
    e.preventDefault();
    const args: Record<string, string> = {};
    if (form.repository) args.repository = form.repository;
    if (form.reference) args.reference = form.reference;
    act.run(() => post(`${base}/commands`, { kind: form.kind, args }));
  };

  const s = edge.data?.status;
  const problem = act.error || edge.error || series.error || commands.error;
  return (
    <section>
      <h1>Edge {name}</h1>
      {problem && <p role="alert" class="error">{problem}</p>}
      {edge.data && (
        <dl class="facts">
          <dt>Site</dt><dd>{edge.data.site}</dd>
          <dt>State</dt><dd class={`state-${s?.state || 'never'}`}>{s?.state}{s?.draining ? ' (draining)' : ''}</dd>
          <dt>Last report</dt><dd>{s?.last_report || 'never'}</dd>
          <dt>Version</dt><dd>{s?.version || ''}</dd>
          <dt>Cache</dt><dd>{s?.cache ? `${bytes(s.cache.used)} of ${bytes(s.cache.budget)}, ${s.cache.blobs} blobs, ${bytes(s.cache.pinned_bytes)} pinned` : ''}</dd>
          <dt>Last 24 h</dt><dd>{s?.last_24h ? `served ${bytes(s.last_24h.served_bytes)}, hit ratio ${ratio(s.last_24h.hit_ratio)}, WAN saved ${bytes(s.last_24h.saved_bytes)}` : ''}</dd>
        </dl>
      )}
      <h2>Bandwidth</h2>
      <div class="filters"><RangePicker value={range} onChange={setRange} /></div>
      {series.data && <UsageChart key={range} rows={series.data.rows} title={`Bandwidth of ${name}`} />}
      {repos.data && <UsageTable caption="By repository" rows={repos.data.rows} keyName="repository" keyLabel="Repository" />}
      <h2>Commands</h2>
      <form class="filters" onSubmit={send} aria-label="Send a command">
        <div>
          <label for="cmd-kind">Command</label>
          <select id="cmd-kind" value={form.kind} onChange={(e) => setForm({ ...form, kind: (e.target as HTMLSelectElement).value })}>
            {COMMAND_KINDS.map((k) => <option key={k} value={k}>{k}</option>)}
          </select>
        </div>
        <div><label for="cmd-repo">Repository</label><input id="cmd-repo" required={NEEDS_IMAGE.has(form.kind)} value={form.repository} onInput={(e) => setForm({ ...form, repository: (e.target as HTMLInputElement).value })} /></div>
        <div><label for="cmd-ref">Tag or digest</label><input id="cmd-ref" required={NEEDS_IMAGE.has(form.kind)} value={form.reference} onInput={(e) => setForm({ ...form, reference: (e.target as HTMLInputElement).value })} /></div>
        <div><button type="submit">Send</button></div>
      </form>
      <table tabIndex={0}>
        <caption>Commands, newest first</caption>
        <thead><tr><th scope="col">Id</th><th scope="col">Command</th><th scope="col">By</th><th scope="col">Sent</th><th scope="col">State</th><th scope="col">Outcome</th></tr></thead>
        <tbody>
          {(commands.data || []).map((c) => (
            <tr key={c.id}>
              <td class="nowrap">{c.id}</td>
              <td><code>{c.kind} {Object.keys(c.args || {}).length ? readable(c.args) : ''}</code></td>
              <td class="nowrap">{c.actor}</td>
              <td class="nowrap">{c.created_at}</td>
              <td class="nowrap" data-testid="command-state">{c.state}</td>
              <td><code>{c.error || (c.result ? readable(c.result) : '')}</code></td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
