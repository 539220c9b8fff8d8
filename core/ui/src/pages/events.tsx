import { useState } from 'preact/hooks';
import { short } from '../format';
import { useEventFeed } from '../hooks';
import { Field, Problem } from '../ui';

// GET /api/v1/events (the latest) then /api/v1/events/stream (live, SSE), filtered by
// repository and type as the API filters them; only events of repositories you may pull.
export function Events() {
  const [repository, setRepository] = useState('');
  const [type, setType] = useState('');
  const params = new URLSearchParams();
  if (repository) params.set('repository', repository);
  if (type) params.set('type', type);
  const feed = useEventFeed(params.toString(), true, 500, 200);
  return (
    <section>
      <h1>Events</h1>
      <div class="filters">
        <Field id="ev-repo" label="Repository" placeholder="team/app" value={repository} onInput={setRepository} />
        <Field id="ev-type" label="Type" placeholder="tag.push, manifest.*" value={type} onInput={setType} />
      </div>
      <p aria-live="polite">{feed.live ? 'Following new events.' : 'Not following.'}</p>
      <Problem text={feed.error} />
      <table tabIndex={0}>
        <caption>Events, newest first</caption>
        <thead><tr><th scope="col">Time</th><th scope="col">Type</th><th scope="col">Repository</th><th scope="col">Tag</th><th scope="col">Digest</th><th scope="col">Actor</th></tr></thead>
        <tbody>
          {feed.items.map((e) => (
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
