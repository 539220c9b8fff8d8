import { useEffect, useState } from 'preact/hooks';
import { get, repoPath } from '../api';

interface Repo {
  name: string;
  public: boolean;
  description: string;
}

// GET /api/v1/repositories?q=&limit=&after=: the repositories the user may pull, by name,
// a page at a time (the core filters and pages; 10,000 repositories stay fast).
export function Repositories() {
  const [q, setQ] = useState('');
  const [items, setItems] = useState<Repo[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState('');
  const [loading, setLoading] = useState(true);
  const load = async (after: string, replace: boolean) => {
    setLoading(true);
    try {
      const params = new URLSearchParams({ limit: '50' });
      if (q) params.set('q', q);
      if (after) params.set('after', after);
      const r = await get<{ items: Repo[]; next?: string }>(`/api/v1/repositories?${params}`);
      setItems(replace ? r.items : [...items, ...r.items]);
      setNext(r.next ?? null);
      setError('');
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => {
    const t = setTimeout(() => load('', true), 150);
    return () => clearTimeout(t);
  }, [q]);
  return (
    <section>
      <h1>Repositories</h1>
      <label for="search">Search repositories</label>
      <input id="search" type="search" value={q} placeholder="team/app"
             onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
      {error && <p role="alert" class="error">{error} (<a href="/ui/login">sign in</a>?)</p>}
      <table>
        <caption class="sr-only">Repositories you may pull</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">Visibility</th><th scope="col">Description</th></tr></thead>
        <tbody>
          {items.map((r) => (
            <tr key={r.name}>
              <td><a href={`/ui/repositories/${repoPath(r.name)}`}>{r.name}</a></td>
              <td>{r.public ? 'public' : 'private'}</td>
              <td>{r.description}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && items.length === 0 && !error && <p>No repositories.</p>}
      {next && <button type="button" disabled={loading} onClick={() => load(next, false)}>More</button>}
    </section>
  );
}
