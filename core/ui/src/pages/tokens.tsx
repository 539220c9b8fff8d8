import { useEffect, useState } from 'preact/hooks';
import { get, post, signedInAs } from '../api';
import { when } from '../format';

interface AccessToken {
  id: string;
  name: string;
  scopes: string[];
  created: number;
  expires: number;
}

// The signed-in user's personal access tokens (for docker login, CI):
// GET/POST /api/v1/users/<me>/tokens, DELETE .../tokens/<id>. The secret is shown once.
export function Tokens() {
  const me = signedInAs();
  const base = `/api/v1/users/${encodeURIComponent(me)}/tokens`;
  const [items, setItems] = useState<AccessToken[]>([]);
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState('');
  const [days, setDays] = useState('90');
  const [secret, setSecret] = useState('');
  const [error, setError] = useState('');
  const load = () =>
    get<{ items: AccessToken[] }>(base)
      .then((r) => setItems(r.items))
      .catch((e) => setError((e as Error).message));
  useEffect(() => {
    if (me) load();
    else setError('Sign in to manage your access tokens.');
  }, [me]);
  const create = async (e: Event) => {
    e.preventDefault();
    try {
      const list = scopes.split(',').map((s) => s.trim()).filter(Boolean);
      const r = await post<{ secret: string }>(base, { name, scopes: list, expires_in_days: parseInt(days || '0', 10) });
      setSecret(r.secret);
      setName('');
      setError('');
      load();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const revoke = async (id: string) => {
    try {
      await post(`${base}/${encodeURIComponent(id)}`, undefined, 'DELETE');
      load();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <section>
      <h1>Access tokens</h1>
      {error && <p role="alert" class="error">{error}</p>}
      {me && (
        <form onSubmit={create}>
          <label for="tok-name">Name</label>
          <input id="tok-name" value={name} required onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          <label for="tok-scopes">Limited to repositories (comma-separated; empty: all you may use)</label>
          <input id="tok-scopes" value={scopes} placeholder="repository:team/app:pull" onInput={(e) => setScopes((e.target as HTMLInputElement).value)} />
          <label for="tok-days">Expires in days (0: never)</label>
          <input id="tok-days" type="number" min="0" max="3650" value={days} onInput={(e) => setDays((e.target as HTMLInputElement).value)} />
          <button type="submit">Create token</button>
        </form>
      )}
      {secret && (
        <>
          <label for="tok-secret">New token (shown once: copy it now)</label>
          <input id="tok-secret" readOnly value={secret} onFocus={(e) => (e.target as HTMLInputElement).select()} />
        </>
      )}
      <table tabIndex={0}>
        <caption>Your access tokens</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {items.map((t) => (
            <tr key={t.id}>
              <td>{t.name}</td><td>{t.scopes.join(', ') || 'all'}</td><td>{when(t.created)}</td><td>{t.expires ? when(t.expires) : 'never'}</td>
              <td><button type="button" class="small" aria-label={`Revoke ${t.name}`} onClick={() => revoke(t.id)}>Revoke</button></td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
