import { useState } from 'preact/hooks';
import { get } from '../api';
import { when } from '../format';
import { usePaged } from '../hooks';
import { Field, Problem } from '../ui';

interface Entry {
  seq: number;
  time: number;
  actor: string;
  source: string;
  action: string;
  object: string;
  outcome: string;
  detail: string;
}

// GET /api/v1/audit?actor=&action=&object=&outcome=&after= (administrators): the audit log,
// filtered and paged by the core.
export function Audit() {
  const [filters, setFilters] = useState({ actor: '', action: '', object: '', outcome: '' });
  const list = usePaged<Entry, number>(async (after) => {
    const params = new URLSearchParams({ limit: '100' });
    for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
    if (after) params.set('after', String(after));
    const r = await get<{ items: Entry[]; next?: number }>(`/api/v1/audit?${params}`);
    return { items: r.items, next: r.next ?? null };
  }, [filters]);
  const field = (key: keyof typeof filters, label: string, hint: string) => (
    <Field id={`audit-${key}`} label={label} placeholder={hint} value={filters[key]} onInput={(v) => setFilters({ ...filters, [key]: v })} />
  );
  return (
    <section>
      <h1>Audit log</h1>
      <div class="filters">
        {field('actor', 'Actor', 'alice')}
        {field('action', 'Action', 'login, push, policy.set')}
        {field('object', 'Object', 'team/app')}
        {field('outcome', 'Outcome', 'success, failure, denied')}
      </div>
      <Problem text={list.error} />
      <table tabIndex={0}>
        <caption>Audit log, oldest first</caption>
        <thead><tr><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Source</th><th scope="col">Action</th><th scope="col">Object</th><th scope="col">Outcome</th><th scope="col">Detail</th></tr></thead>
        <tbody>
          {list.items.map((e) => (
            <tr key={e.seq}>
              <td>{when(e.time)}</td><td>{e.actor}</td><td>{e.source}</td><td>{e.action}</td><td>{e.object}</td><td>{e.outcome}</td><td>{e.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.next !== null && <button type="button" disabled={list.loading} onClick={list.more}>More</button>}
    </section>
  );
}
