import { useState } from 'preact/hooks';
import { get, repoPath } from '../api';
import { bytes, short, when } from '../format';
import { useLoad } from '../hooks';

// GET /api/v1/repositories/<name>/manifests/<ref> (layers, config, the history as
// Dockerfile lines), .../scan (the software installed and its vulnerabilities) and
// .../trust (signatures and the trust policy's verdict).
export function Image({ name, reference }: { name: string; reference: string }) {
  const base = `/api/v1/repositories/${repoPath(name)}/manifests/${encodeURIComponent(reference)}`;
  const loaded = useLoad(() => get(base, name), [base]);
  const scanned = useLoad(() => get(`${base}/scan`, name), [base]);
  const signatures = useLoad(() => get(`${base}/trust`, name), [base]);
  const [view, scan, trust, error] = [loaded.data, scanned.data, signatures.data, loaded.error];
  const [filter, setFilter] = useState('');
  if (error) return <section><h1>{name}:{reference}</h1><p role="alert" class="error">{error}</p></section>;
  if (!view) return <section><h1>{name}:{reference}</h1><p>Loading…</p></section>;
  const cfg = view.config || {};
  const pull = `${location.host}/${name}${reference.includes(':') ? '@' : ':'}${reference}`;
  const packages: any[] = scan && Array.isArray(scan.packages) ? scan.packages : [];
  const findings: any[] = scan && Array.isArray(scan.findings) ? scan.findings : [];
  const shown = packages.filter((p) => !filter || String(p.name).includes(filter));
  return (
    <section>
      <h1>{name}:{reference}</h1>
      <p>Digest <code>{view.digest}</code> · {view.media_type}</p>
      <label for="pull">Pull command</label>
      <input id="pull" readOnly value={`docker pull ${pull}`} onFocus={(e) => (e.target as HTMLInputElement).select()} />

      {Array.isArray(view.manifests) && (
        <table tabIndex={0}>
          <caption>Platforms</caption>
          <thead><tr><th scope="col">Platform</th><th scope="col">Digest</th><th scope="col">Size</th></tr></thead>
          <tbody>
            {view.manifests.map((m: any) => (
              <tr key={m.digest}>
                <td>{m.platform ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? '/' + m.platform.variant : ''}` : ''}</td>
                <td><a href={`/ui/repositories/${repoPath(name)}/-/${encodeURIComponent(m.digest)}`}>{short(m.digest)}</a></td>
                <td>{bytes(m.size)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      {view.config && (
        <>
          <h2>Configuration</h2>
          <dl class="facts">
            <dt>Platform</dt><dd>{[cfg.os, cfg.architecture, cfg.variant].filter(Boolean).join('/')}</dd>
            <dt>Created</dt><dd>{when(cfg.created)}</dd>
            <dt>Entrypoint</dt><dd><code>{JSON.stringify(cfg.entrypoint ?? null)}</code></dd>
            <dt>Command</dt><dd><code>{JSON.stringify(cfg.cmd ?? null)}</code></dd>
            <dt>Working directory</dt><dd>{cfg.working_dir || ''}</dd>
            <dt>User</dt><dd>{cfg.user || ''}</dd>
          </dl>
          <h3>Environment</h3>
          <ul class="plain">{(cfg.env || []).map((e: string) => <li key={e}><code>{e}</code></li>)}</ul>
          <h3>Labels</h3>
          <dl class="facts">
            {Object.entries(cfg.labels || {}).map(([k, v]) => (
              <>
                <dt key={'k' + k}>{k}</dt>
                <dd key={'v' + k}>{String(v)}</dd>
              </>
            ))}
          </dl>
        </>
      )}

      {Array.isArray(view.history) && (
        <table class="history" tabIndex={0}>
          <caption>Dockerfile (from the image's history)</caption>
          <thead><tr><th scope="col">Instruction</th><th scope="col">Layer</th><th scope="col">Size</th></tr></thead>
          <tbody>
            {view.history.map((h: any, i: number) => (
              <tr key={i} class={h.empty_layer ? 'empty' : ''}>
                <td><code>{h.instruction}</code></td>
                <td>{h.layer ? <code title={h.layer}>{short(h.layer)}</code> : 'no layer'}</td>
                <td>{h.layer ? bytes(h.layer_size) : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      {Array.isArray(view.layers) && (
        <table tabIndex={0}>
          <caption>Layers ({bytes(view.total_size)} compressed)</caption>
          <thead><tr><th scope="col">Digest</th><th scope="col">Media type</th><th scope="col">Size</th></tr></thead>
          <tbody>
            {view.layers.map((l: any) => (
              <tr key={l.digest}><td><code title={l.digest}>{short(l.digest)}</code></td><td>{l.media_type}</td><td>{bytes(l.size)}</td></tr>
            ))}
          </tbody>
        </table>
      )}

      <h2>Signatures</h2>
      {!trust && <p>No signature information.</p>}
      {trust && (
        <>
          <p>{trust.signed ? 'Signed.' : 'Not signed.'}
            {trust.policy && ` Trust policy of ${trust.policy.scope} (requires ${trust.policy.require}): ${trust.policy.satisfied ? 'met' : 'not met'}.`}</p>
          <ul class="plain">
            {(trust.notary || []).map((n: any, i: number) => (
              <li key={'n' + i}>Notary: tag <code>{n.tag}</code> in {n.role} ({n.gun}), keys {(n.keys || []).map(short).join(', ')}, until {n.expires}</li>
            ))}
            {(trust.cosign || []).map((c: any, i: number) => (
              <li key={'c' + i}>cosign ({c.source}): {c.verified ? `verified with ${c.key}` : `not verified: ${c.error || ''}`}</li>
            ))}
          </ul>
        </>
      )}

      <h2>Software and vulnerabilities</h2>
      {!scan && <p>No scan result.</p>}
      {scan && scan.status && scan.status !== 'completed' && <p>Scan: {scan.status}{scan.error ? `: ${scan.error}` : ''}</p>}
      {findings.length > 0 && (
        <table tabIndex={0}>
          <caption>Vulnerabilities</caption>
          <thead><tr><th scope="col">Severity</th><th scope="col">Advisory</th><th scope="col">Package</th><th scope="col">Installed</th><th scope="col">Fixed in</th><th scope="col">Layer</th><th scope="col">Summary</th></tr></thead>
          <tbody>
            {findings.map((f: any, i: number) => (
              <tr key={i}>
                <td>{f.severity}{f.score ? ` ${f.score}` : ''}</td>
                <td>{f.advisory}{f.aliases && f.aliases.length ? ` (${f.aliases.join(', ')})` : ''}</td>
                <td>{f.package}</td><td>{f.installed}</td><td>{f.fixed || ''}</td>
                <td>{f.layer ? <code title={f.layer}>{short(f.layer)}</code> : ''}</td><td>{f.summary || ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {packages.length > 0 && (
        <>
          <label for="pkg-filter">Search installed software</label>
          <input id="pkg-filter" type="search" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
          <table tabIndex={0}>
            <caption>Software installed ({packages.length} packages)</caption>
            <thead><tr><th scope="col">Type</th><th scope="col">Name</th><th scope="col">Version</th><th scope="col">Layer</th></tr></thead>
            <tbody>
              {shown.map((p: any, i: number) => (
                <tr key={i}><td>{p.type}</td><td>{p.name}</td><td>{p.version}</td><td>{p.layer ? <code>{short(p.layer)}</code> : ''}</td></tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
