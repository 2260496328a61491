// Login: the API token is pasted into a form, checked with GET
// /api/v1/session, and kept in sessionStorage (never in the URL, so it is
// not in the history, bookmarks or a shared link; it goes with the tab).

import { Api, ApiError, type Session } from './api';
import { h } from './dom';

const key = 'tms.token';

export function storedToken(): string | null { return sessionStorage.getItem(key); }
export function forgetToken(): void { sessionStorage.removeItem(key); }

/** check returns the session of token, or a message saying why not. */
export async function check(token: string): Promise<Session | string> {
  try {
    return await new Api(token).session();
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return 'This token was refused. Check it and try again (data/api-tokens/viewer or operator).';
    if (e instanceof ApiError) return `The service answered ${e.status}: ${e.message}`;
    return 'The service cannot be reached. Is tms running?';
  }
}

export function showLogin(root: HTMLElement, message: string, onSession: (token: string, s: Session) => void): void {
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true, 'data-testid': 'login-token', 'aria-describedby': 'login-msg' });
  const msg = h('p', { id: 'login-msg', class: message ? 'login-msg error' : 'login-msg', role: 'alert', 'data-testid': 'login-message', text: message });
  const btn = h('button', { type: 'submit', 'data-testid': 'login-submit', text: 'Log in' });
  const form = h('form', { class: 'login', 'aria-label': 'Log in' },
    h('h1', { text: 'tms dashboard' }),
    h('label', { for: 'token', text: 'API token' }), input,
    h('p', { class: 'hint', text: 'Paste the token from data/api-tokens/viewer (or operator, to edit stations).' }),
    btn, msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    btn.disabled = true;
    msg.textContent = 'Checking…';
    msg.className = 'login-msg';
    const r = await check(token);
    btn.disabled = false;
    if (typeof r === 'string') {
      msg.textContent = r;
      msg.className = 'login-msg error';
      input.focus();
      return;
    }
    sessionStorage.setItem(key, token);
    onSession(token, r);
  });
  root.replaceChildren(h('div', { class: 'login-wrap' }, form));
  input.focus();
}
