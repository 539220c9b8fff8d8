import { useEffect, useState } from 'preact/hooks';
import { get, repoPath } from '../api';
import { bytes, short, when } from '../format';

interface Tag {
  tag: string;
  digest: string;
  pushed: number;
  media_type?: string;
  size?: number;
  immutable?: string;
}

// GET /api/v1/repositories/<name>/tags: tags, newest first, with their digests.
export function Repository({ name }: { name: string }) {
  const [tags, setTags] = useState<Tag[] | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    get<{ tags: Tag[] }>(`/api/v1/repositories/${repoPath(name)}/tags`, name)
      .then((r) => setTags(r.tags))
      .catch((e) => setError((e as Error).message));
  }, [name]);
  return (
    <section>
      <h1>{name}</h1>
      {error && <p role="alert" class="error">{error}</p>}
      {tags && (
        <table>
          <caption>Tags</caption>
          <thead>
            <tr><th scope="col">Tag</th><th scope="col">Digest</th><th scope="col">Pushed</th><th scope="col">Manifest size</th><th scope="col">Immutable</th></tr>
          </thead>
          <tbody>
            {tags.map((t) => (
              <tr key={t.tag}>
                <td><a href={`/ui/repositories/${repoPath(name)}/-/${encodeURIComponent(t.tag)}`}>{t.tag}</a></td>
                <td><code title={t.digest}>{short(t.digest)}</code></td>
                <td>{when(t.pushed)}</td>
                <td>{bytes(t.size)}</td>
                <td>{t.immutable ? 'yes' : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {tags && tags.length === 0 && <p>No tags.</p>}
    </section>
  );
}
