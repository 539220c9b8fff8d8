import { useEffect, useState } from 'preact/hooks';
import { get, post, stream } from '../api';
import { navigate } from '../main';

interface Job {
  id: string;
  kind: string;
  state: string;
  actor: string;
  created_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  progress: { done: number; total: number; message: string };
  result: unknown;
  error: string | null;
  retry_of: string | null;
  duration_ms?: number;
}

// GET /api/v1/jobs?kind=&state=&before= (administrators): newest first, a page at a time.
export function Jobs() {
  const [kind, setKind] = useState('');
  const [state, setState] = useState('');
  const [items, setItems] = useState<Job[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState('');
  const load = async (before: string, replace: boolean) => {
    try {
      const params = new URLSearchParams({ limit: '50' });
      if (kind) params.set('kind', kind);
      if (state) params.set('state', state);
      if (before) params.set('before', before);
      const r = await get<{ items: Job[]; next?: string }>(`/api/v1/jobs?${params}`);
      setItems(replace ? r.items : [...items, ...r.items]);
      setNext(r.next ?? null);
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useEffect(() => {
    const t = setTimeout(() => load('', true), 150);
    return () => clearTimeout(t);
  }, [kind, state]);
  return (
    <section>
      <h1>Jobs</h1>
      <div class="filters">
        <div>
          <label for="job-kind">Kind</label>
          <input id="job-kind" value={kind} placeholder="gc, scan" onInput={(e) => setKind((e.target as HTMLInputElement).value)} />
        </div>
        <div>
          <label for="job-state">State</label>
          <input id="job-state" value={state} placeholder="running, failed" onInput={(e) => setState((e.target as HTMLInputElement).value)} />
        </div>
      </div>
      {error && <p role="alert" class="error">{error}</p>}
      <table>
        <caption>Jobs, newest first</caption>
        <thead><tr><th scope="col">Job</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">By</th><th scope="col">Created</th><th scope="col">Progress</th></tr></thead>
        <tbody>
          {items.map((j) => (
            <tr key={j.id}>
              <td><a href={`/ui/jobs/${encodeURIComponent(j.id)}`}>{j.id}</a></td>
              <td>{j.kind}</td><td>{j.state}</td><td>{j.actor}</td><td>{j.created_at || ''}</td>
              <td>{j.progress && j.progress.total ? `${j.progress.done}/${j.progress.total} ${j.progress.message || ''}` : j.progress?.message || ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {next && <button type="button" onClick={() => load(next, false)}>More</button>}
    </section>
  );
}

// GET /api/v1/jobs/<id> and its log, followed live (?follow=1, SSE) until the job ends;
// cancel and retry (POST .../cancel, .../retry).
export function JobPage({ id }: { id: string }) {
  const [job, setJob] = useState<Job | null>(null);
  const [lines, setLines] = useState<string[]>([]);
  const [error, setError] = useState('');
  const base = `/api/v1/jobs/${encodeURIComponent(id)}`;
  useEffect(() => {
    const abort = new AbortController();
    get<Job>(base).then(setJob).catch((e) => setError((e as Error).message));
    let all: string[] = [];
    stream(`${base}/log?follow=1`, (d: any) => {
      if (typeof d.line === 'string') {
        all = [...all, d.line];
        setLines(all);
      } else if (d && d.id === id) {
        setJob(d);  // the end: the job as it finished
      }
    }, abort.signal).catch((e) => {
      if (!abort.signal.aborted) setError((e as Error).message);
    });
    return () => abort.abort();
  }, [id]);
  const act = async (what: 'cancel' | 'retry') => {
    try {
      const r = await post<any>(`${base}/${what}`);
      if (what === 'retry' && r.id) navigate(`/ui/jobs/${encodeURIComponent(r.id)}`);
      else setJob(r);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const finished = job && ['succeeded', 'failed', 'cancelled'].includes(job.state);
  return (
    <section>
      <h1>Job {id}</h1>
      {error && <p role="alert" class="error">{error}</p>}
      {job && (
        <>
          <dl class="facts">
            <dt>Kind</dt><dd>{job.kind}</dd>
            <dt>State</dt><dd data-testid="job-state">{job.state}</dd>
            <dt>By</dt><dd>{job.actor}</dd>
            <dt>Created</dt><dd>{job.created_at || ''}</dd>
            <dt>Finished</dt><dd>{job.finished_at || ''}</dd>
            {job.error && (<><dt>Error</dt><dd>{job.error}</dd></>)}
          </dl>
          {!finished && <button type="button" onClick={() => act('cancel')}>Cancel</button>}
          {finished && job.state !== 'succeeded' && <button type="button" onClick={() => act('retry')}>Retry</button>}
          {job.result !== null && job.result !== undefined && (
            <>
              <h2>Result</h2>
              <pre class="log">{JSON.stringify(job.result, null, 2)}</pre>
            </>
          )}
        </>
      )}
      <h2>Log</h2>
      <pre class="log" aria-live="polite">{lines.join('\n')}</pre>
    </section>
  );
}
