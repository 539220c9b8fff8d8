// The one way pages load from the API: useLoad for a single answer, usePaged for a list
// the core pages (its cursor in "next"). Both re-run when deps change (debounced, for
// filters typed into a field), keep the last error as text, and drop answers that arrive
// after a newer request was made.
import { useEffect, useRef, useState } from 'preact/hooks';
import { get, stream } from './api';

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

// A change (a POST, PUT or DELETE), then the reloads that show it; the core's refusal
// stays shown as the error.
export function useAction(...reloads: Array<() => void>) {
  const [error, setError] = useState('');
  const run = async (f: () => Promise<unknown>) => {
    try {
      await f();
      setError('');
      reloads.forEach((r) => r());
      return true;
    } catch (e) {
      setError(message(e));
      return false;
    }
  };
  return { error, setError, run };
}

export interface FeedEvent {
  seq: number;
  time: string;
  type: string;
  actor: string;
  repository: string;
  target: { digest?: string; tag?: string };
  count?: number;
}

// The event feed for query (the API's filters, "repository=a&type=b"): the latest events
// (where the log ends, then the matching events among the 10,000 before it), newest
// first, then followed live (/api/v1/events/stream from there); at most `keep` kept.
// enabled false: nothing is asked (signed out). Debounced like usePaged (typed filters).
export function useEventFeed(query: string, enabled = true, keep = 500, debounceMs = 0) {
  const [items, setItems] = useState<FeedEvent[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [live, setLive] = useState(false);
  const [error, setError] = useState('');
  useEffect(() => {
    if (!enabled) return;
    const abort = new AbortController();
    const start = async () => {
      try {
        const head = await get<{ last_seq: number }>(`/api/v1/events?limit=1&${query}`);
        const since = Math.max(0, head.last_seq - 10000);
        const page = await get<{ events: FeedEvent[] }>(`/api/v1/events?limit=1000&since=${since}&${query}`);
        let shown = page.events.slice().reverse().slice(0, keep);
        setItems(shown);
        setLoaded(true);
        setError('');
        setLive(true);
        await stream(`/api/v1/events/stream?since=${head.last_seq}&${query}`, (e: FeedEvent) => {
          shown = [e, ...shown].slice(0, keep);
          setItems(shown);
        }, abort.signal);
      } catch (e) {
        if (!abort.signal.aborted) setError(message(e));
      } finally {
        setLive(false);
      }
    };
    const t = setTimeout(start, debounceMs);
    return () => {
      clearTimeout(t);
      abort.abort();
    };
  }, [query, enabled]);
  return { items, loaded, live, error };
}
