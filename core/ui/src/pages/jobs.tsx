import { useEffect, useState } from 'preact/hooks';
import { get, post, stream } from '../api';
import { navigate } from '../main';
import { useAction, useLoad, usePaged } from '../hooks';
import { Field, Problem } from '../ui';

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
  const list = usePaged<Job, string>(async (before) => {
    const params = new URLSearchParams({ limit: '50' });
    if (kind) params.set('kind', kind);
    if (state) params.set('state', state);
    if (before) params.set('before', before);
    const r = await get<{ items: Job[]; next?: string }>(`/api/v1/jobs?${params}`);
    return { items: r.items, next: r.next ?? null };
  }, [kind, state]);
  return (
    <section>
      <h1>Jobs</h1>
      <div class="filters">
        <Field id="job-kind" label="Kind" placeholder="gc, scan" value={kind} onInput={setKind} />
        <Field id="job-state" label="State" placeholder="running, failed" value={state} onInput={setState} />
      </div>
      <Problem text={list.error} />
      <table tabIndex={0}>
        <caption>Jobs, newest first</caption>
        <thead><tr><th scope="col">Job</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">By</th><th scope="col">Created</th><th scope="col">Progress</th></tr></thead>
        <tbody>
          {list.items.map((j) => (
            <tr key={j.id}>
              <td><a href={`/ui/jobs/${encodeURIComponent(j.id)}`}>{j.id}</a></td>
              <td>{j.kind}</td><td>{j.state}</td><td>{j.actor}</td><td>{j.created_at || ''}</td>
              <td>{j.progress && j.progress.total ? `${j.progress.done}/${j.progress.total} ${j.progress.message || ''}` : j.progress?.message || ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.next && <button type="button" disabled={list.loading} onClick={list.more}>More</button>}
      {!list.error && <Schedules />}
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
    // The job now, and its log followed to the end; the end's state stands even when the
    // first answer (an older state) arrives after it.
    let finished = false;
    get<Job>(base).then((j) => finished || setJob(j)).catch((e) => setError((e as Error).message));
    let all: string[] = [];
    stream(`${base}/log?follow=1`, (d: any) => {
      if (typeof d.line === 'string') {
        all = [...all, d.line];
        setLines(all);
      } else if (d && d.id === id) {
        finished = true;
        setJob(d);  // the end: the job as it finished
      }
    }, abort.signal)
      // A log that ended without the job's last state: ask for it.
      .then(() => (finished ? undefined : get<Job>(base).then(setJob)))
      .catch((e) => {
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

interface Schedule {
  name: string;
  cron: string;
  kind: string;
  params: Record<string, unknown>;
  enabled: boolean;
  last_run: string | null;
  next_run: string | null;
  last_job: string | null;
  origin: string;
}

// GET /api/v1/schedules; PUT .../<name> to add one or switch it on or off; DELETE; and a
// job run now from a schedule (POST /api/v1/jobs with its kind and parameters).
export function Schedules() {
  const schedules = useLoad(() => get<{ items: Schedule[] }>('/api/v1/schedules').then((r) => r.items), []);
  const [form, setForm] = useState({ name: '', cron: '', kind: '' });
  const act = useAction(schedules.reload);

  const path = (name: string) => `/api/v1/schedules/${encodeURIComponent(name)}`;
  const toggle = (s: Schedule) => act.run(() => post(path(s.name), { cron: s.cron, kind: s.kind, params: s.params, enabled: !s.enabled }, 'PUT'));
  const run = (s: Schedule) =>
    act.run(async () => {
      const r = await post<{ id: string }>('/api/v1/jobs', { kind: s.kind, params: s.params });
      navigate(`/ui/jobs/${encodeURIComponent(r.id)}`);
    });
  const add = (e: Event) => {
    e.preventDefault();
    act.run(async () => {
      await post(path(form.name), { cron: form.cron, kind: form.kind }, 'PUT');
      setForm({ name: '', cron: '', kind: '' });
    });
  };
  return (
    <section aria-labelledby="schedules">
      <h2 id="schedules">Schedules</h2>
      <Problem text={act.error || schedules.error} />
      <table tabIndex={0}>
        <caption class="sr-only">Schedules</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">Cron</th><th scope="col">Kind</th><th scope="col">Last run</th><th scope="col">Next run</th><th scope="col">Actions</th></tr></thead>
        <tbody>
          {(schedules.data || []).map((s) => (
            <tr key={s.name}>
              <td>{s.name}{s.origin === 'config' ? ' (configuration)' : ''}</td>
              <td><code>{s.cron}</code></td>
              <td>{s.kind}</td>
              <td>{s.last_job ? <a href={`/ui/jobs/${encodeURIComponent(s.last_job)}`}>{s.last_run}</a> : s.last_run || 'never'}</td>
              <td>{s.enabled ? s.next_run || '' : 'disabled'}</td>
              <td class="actions">
                <button type="button" class="small" aria-label={`${s.enabled ? 'Disable' : 'Enable'} ${s.name}`} onClick={() => toggle(s)}>{s.enabled ? 'Disable' : 'Enable'}</button>{' '}
                <button type="button" class="small" aria-label={`Run ${s.name} now`} onClick={() => run(s)}>Run now</button>{' '}
                <button type="button" class="small" aria-label={`Remove ${s.name}`} onClick={() => act.run(() => post(path(s.name), undefined, 'DELETE'))}>Remove</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="filters" onSubmit={add}>
        <Field id="schedule-name" label="Schedule name" required value={form.name} onInput={(v) => setForm({ ...form, name: v })} />
        <Field id="schedule-cron" label="Cron (minute hour day month weekday)" required placeholder="0 3 * * *" value={form.cron} onInput={(v) => setForm({ ...form, cron: v })} />
        <Field id="schedule-kind" label="Job kind" required placeholder="gc" value={form.kind} onInput={(v) => setForm({ ...form, kind: v })} />
        <div><button type="submit">Add schedule</button></div>
      </form>
    </section>
  );
}
