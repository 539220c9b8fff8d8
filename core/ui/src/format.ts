export function bytes(n: number | undefined): string {
  if (n === undefined || n === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function when(ms: number | string | undefined): string {
  if (ms === undefined || ms === '' || ms === 0) return '';
  const d = new Date(ms);
  return isNaN(d.getTime()) ? String(ms) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function short(digest: string): string {
  return digest.startsWith('sha256:') ? digest.slice(7, 19) : digest;
}
