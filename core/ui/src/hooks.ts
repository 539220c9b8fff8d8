// The one way pages load from the API: useLoad for a single answer, usePaged for a list
// the core pages (its cursor in "next"). Both re-run when deps change (debounced, for
// filters typed into a field), keep the last error as text, and drop answers that arrive
// after a newer request was made.
import { useEffect, useRef, useState } from 'preact/hooks';

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState('');
  const generation = useRef(0);
  const run = () => {
    const mine = ++generation.current;
    load()
      .then((d) => {
        if (mine !== generation.current) return;
        setData(d);
        setError('');
      })
      .catch((e) => {
        if (mine === generation.current) setError(message(e));
      });
  };
  useEffect(run, deps);
  return { data, error, setError, reload: run };
}

export interface Page<T, C> {
  items: T[];
  next: C | null;
}

export function usePaged<T, C>(fetchPage: (cursor: C | null) => Promise<Page<T, C>>, deps: unknown[], debounceMs = 150) {
  const [items, setItems] = useState<T[]>([]);
  const [next, setNext] = useState<C | null>(null);
  const [error, setError] = useState('');
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const first = useRef(true);
  const load = async (cursor: C | null, before: T[]) => {
    const mine = ++generation.current;
    setLoading(true);
    try {
      const page = await fetchPage(cursor);
      if (mine !== generation.current) return;
      setItems([...before, ...page.items]);
      setNext(page.next);
      setError('');
    } catch (e) {
      if (mine === generation.current) setError(message(e));
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  };
  useEffect(() => {
    // The first load at once; later ones (a filter being typed) once typing pauses.
    const t = setTimeout(() => load(null, []), first.current ? 0 : debounceMs);
    first.current = false;
    return () => clearTimeout(t);
  }, deps);
  return {
    items,
    next,
    error,
    loading,
    more: () => next !== null && load(next, items),
    reload: () => load(null, []),
  };
}
