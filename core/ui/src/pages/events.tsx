import { useEffect, useState } from 'preact/hooks';
import { get, stream } from '../api';
import { short } from '../format';

interface Ev {
  seq: number;
  time: string;
  type: string;
  actor: string;
  repository: string;
  target: { digest?: string; tag?: string };
  count?: number;
}

// GET /api/v1/events (the latest page) then /api/v1/events/stream (live, SSE), filtered by
// repository and type as the API filters them; only events of repositories you may pull.
export function Events() {
  const [repository, setRepository] = useState('');
  const [type, setType] = useState('');
  const [events, setEvents] = useState<Ev[]>([]);
  const [live, setLive] = useState(false);
  const [error, setError] = useState('');
  useEffect(() => {
    const abort = new AbortController();
    const params = new URLSearchParams();
    if (repository) params.set('repository', repository);
    if (type) params.set('type', type);
    const start = async () => {
      try {
        // The newest events first: ask where the log ends, then the page before it.
        const head = await get<{ last_seq: number }>(`/api/v1/events?limit=1&${params}`);
        const since = Math.max(0, head.last_seq - 100);
        const page = await get<{ events: Ev[] }>(`/api/v1/events?limit=100&since=${since}&${params}`);
        let shown = page.events.slice().reverse();
        setEvents(shown);
        setError('');
        setLive(true);
        await stream(`/api/v1/events/stream?since=${head.last_seq}&${params}`, (e: Ev) => {
          shown = [e, ...shown].slice(0, 500);
          setEvents(shown);
        }, abort.signal);
      } catch (e) {
        if (!abort.signal.aborted) setError((e as Error).message);
      } finally {
        setLive(false);
      }
    };
    const t = setTimeout(start, 200);
    return () => {
      clearTimeout(t);
      abort.abort();
    };
  }, [repository, type]);
  return (
    <section>
      <h1>Events</h1>
      <div class="filters">
        <div>
          <label for="ev-repo">Repository</label>
          <input id="ev-repo" value={repository} placeholder="team/app" onInput={(e) => setRepository((e.target as HTMLInputElement).value)} />
        </div>
        <div>
          <label for="ev-type">Type</label>
          <input id="ev-type" value={type} placeholder="tag.push, manifest.*" onInput={(e) => setType((e.target as HTMLInputElement).value)} />
        </div>
      </div>
      <p aria-live="polite">{live ? 'Following new events.' : 'Not following.'}</p>
      {error && <p role="alert" class="error">{error}</p>}
      <table tabIndex={0}>
        <caption>Events, newest first</caption>
        <thead><tr><th scope="col">Time</th><th scope="col">Type</th><th scope="col">Repository</th><th scope="col">Tag</th><th scope="col">Digest</th><th scope="col">Actor</th></tr></thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.seq}>
              <td>{e.time}</td><td>{e.type}</td><td>{e.repository}</td><td>{e.target?.tag || ''}</td>
              <td>{e.target?.digest ? <code title={e.target.digest}>{short(e.target.digest)}</code> : ''}</td><td>{e.actor}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
