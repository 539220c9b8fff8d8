import { useState } from 'preact/hooks';
import { signIn } from '../api';
import { navigate } from '../main';

export function Login() {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await signIn(name, password);
      navigate('/ui/');
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="narrow">
      <h1>Sign in</h1>
      <form onSubmit={submit}>
        <label for="user">User name</label>
        <input id="user" name="username" autocomplete="username" value={name} required
               onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" value={password} required
               onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
        <button type="submit" disabled={busy}>Sign in</button>
        {error && <p role="alert" class="error">{error}</p>}
      </form>
    </section>
  );
}
