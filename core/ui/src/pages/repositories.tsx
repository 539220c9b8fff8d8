import { useState } from 'preact/hooks';
import { get, repoPath } from '../api';
import { usePaged } from '../hooks';
import { Field } from '../ui';

interface Repo {
  name: string;
  public: boolean;
  description: string;
  organization?: string;
  teams?: { name: string; role: string }[];
}

// GET /api/v1/repositories?q=&limit=&after=: the repositories the user may pull, by name,
// a page at a time (the core filters and pages; 10,000 repositories stay fast).
export function Repositories() {
  const [q, setQ] = useState('');
  const [sort, setSort] = useState('name');
  const list = usePaged<Repo, string>(async (after) => {
    const params = new URLSearchParams({ limit: '50' });
    if (q) params.set('q', q);
    if (sort !== 'name') params.set('sort', sort);
    if (after) params.set('after', after);
    const r = await get<{ items: Repo[]; next?: string }>(`/api/v1/repositories?${params}`);
    return { items: r.items, next: r.next ?? null };
  }, [q, sort]);
  return (
    <section>
      <h1>Repositories</h1>
      <div class="filters">
        <Field id="search" type="search" label="Search repositories" placeholder="team/app" value={q} onInput={setQ} />
        <div>
          <label for="sort">Sort</label>
          <select id="sort" value={sort} onChange={(e) => setSort((e.target as HTMLSelectElement).value)}>
            <option value="name">by name, A to Z</option>
            <option value="-name">by name, Z to A</option>
          </select>
        </div>
      </div>
      {list.error && <p role="alert" class="error">{list.error} (<a href="/ui/login">sign in</a>?)</p>}
      <table tabIndex={0}>
        <caption class="sr-only">Repositories you may pull</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">Visibility</th><th scope="col">Organization</th><th scope="col">Teams</th><th scope="col">Description</th></tr></thead>
        <tbody>
          {list.items.map((r) => (
            <tr key={r.name}>
              <td><a href={`/ui/repositories/${repoPath(r.name)}`}>{r.name}</a></td>
              <td>{r.public ? 'public' : 'private'}</td>
              <td>{r.organization || ''}</td>
              <td>{(r.teams || []).map((t) => `${t.name} (${t.role})`).join(', ')}</td>
              <td>{r.description}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!list.loading && list.items.length === 0 && !list.error && <p>No repositories.</p>}
      {list.next && <button type="button" disabled={list.loading} onClick={list.more}>More</button>}
    </section>
  );
}
