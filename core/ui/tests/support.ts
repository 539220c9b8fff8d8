// A real wharf-core for the browser tests: started on 127.0.0.1 with port 0 and a temp
// data directory (token auth, a known administrator password), and images pushed to it
// over the registry API as a client would.
import { spawn, ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const ADMIN_PASSWORD = 'ui-admin-password';

export class Core {
  proc!: ChildProcess;
  dir = mkdtempSync(join(tmpdir(), 'wharf-ui-'));
  url = '';

  async start(): Promise<void> {
    const bin = process.env.WHARF_CORE_BIN || '../../build/core/wharf-core';
    const portFile = join(this.dir, 'port');
    this.proc = spawn(bin, ['--listen', '127.0.0.1:0', '--data-dir', join(this.dir, 'data'), '--port-file', portFile,
      '--auth', 'token', '--scan-on-push', 'false', '--access-log', 'false'], {
      env: { ...process.env, WHARF_ADMIN_PASSWORD: ADMIN_PASSWORD },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (existsSync(portFile)) {
        const text = readFileSync(portFile, 'utf8');
        if (text.endsWith('\n')) {
          this.url = `http://127.0.0.1:${parseInt(text, 10)}`;
          return;
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('wharf-core did not start');
  }

  stop() {
    this.proc?.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  basic(user = 'admin', password = ADMIN_PASSWORD): string {
    return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
  }

  async api(method: string, path: string, body?: unknown, user = 'admin', password = ADMIN_PASSWORD): Promise<Response> {
    return fetch(this.url + path, {
      method,
      headers: { Authorization: this.basic(user, password), 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async token(scope: string): Promise<string> {
    const r = await fetch(`${this.url}/auth/token?service=wharf&scope=${encodeURIComponent(scope)}`, {
      headers: { Authorization: this.basic() },
    });
    return (await r.json()).token;
  }

  // Pushes an image of one layer per history entry that makes one; returns its digest.
  async pushImage(repo: string, tag: string, config: Record<string, unknown>, layers: number): Promise<string> {
    const token = await this.token(`repository:${repo}:pull,push`);
    const auth = { Authorization: `Bearer ${token}` };
    const blob = async (data: Buffer) => {
      const digest = 'sha256:' + createHash('sha256').update(data).digest('hex');
      const r = await fetch(`${this.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: auth, body: data });
      if (r.status !== 201) throw new Error(`blob push: ${r.status} ${await r.text()}`);
      return { digest, size: data.length };
    };
    const layerDescs = [];
    for (let i = 0; i < layers; i++) {
      const b = await blob(gzipSync(Buffer.from(`layer ${repo} ${tag} ${i}`)));
      layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...b });
    }
    const cfg = await blob(Buffer.from(JSON.stringify(config)));
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
      layers: layerDescs,
    });
    const r = await fetch(`${this.url}/v2/${repo}/manifests/${tag}`, {
      method: 'PUT',
      headers: { ...auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    if (r.status !== 201) throw new Error(`manifest push: ${r.status} ${await r.text()}`);
    return 'sha256:' + createHash('sha256').update(manifest).digest('hex');
  }
}

// An image config as `docker build` leaves it for a small Dockerfile.
export function builtConfig(extraLabels: Record<string, string> = {}) {
  return {
    architecture: 'amd64',
    os: 'linux',
    created: '2026-11-01T10:00:00Z',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'APP_MODE=production'],
      Entrypoint: ['/usr/local/bin/app'],
      Cmd: ['--serve'],
      WorkingDir: '/srv',
      Labels: { 'org.opencontainers.image.title': 'app', ...extraLabels },
    },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [
      { created: '2026-10-01T00:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:1b2c3d in / ' },
      { created: '2026-10-01T00:00:01Z', created_by: '/bin/sh -c #(nop)  CMD ["bash"]', empty_layer: true },
      { created: '2026-11-01T10:00:00Z', created_by: 'RUN /bin/sh -c apt-get update && apt-get install -y curl # buildkit' },
      { created: '2026-11-01T10:00:01Z', created_by: 'COPY app /usr/local/bin/app # buildkit' },
      { created: '2026-11-01T10:00:02Z', created_by: 'WORKDIR /srv', empty_layer: true },
      { created: '2026-11-01T10:00:03Z', created_by: 'ENTRYPOINT ["/usr/local/bin/app"]', empty_layer: true },
    ],
  };
}
