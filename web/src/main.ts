// The dashboard's entry: log in (or reuse the tab's token), then build the
// page. Leaflet's and geoman's stylesheets are bundled: the CSP allows no
// CDN.
import 'leaflet/dist/leaflet.css';
import '@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css';
import './styles.css';
import { check, forgetToken, showLogin, storedToken } from './login';
import { startApp } from './app';

const root = document.getElementById('app')!;

async function boot(): Promise<void> {
  const token = storedToken();
  if (token) {
    const s = await check(token);
    if (typeof s !== 'string') { startApp(root, token, s, logout); return; }
    forgetToken();
    showLogin(root, s, (t, sess) => startApp(root, t, sess, logout));
    return;
  }
  showLogin(root, '', (t, sess) => startApp(root, t, sess, logout));
}

function logout(message = ''): void {
  forgetToken();
  location.hash = '';
  if (message) sessionStorage.setItem('tms.logout-message', message);
  location.reload();
}

const msg = sessionStorage.getItem('tms.logout-message');
if (msg) {
  sessionStorage.removeItem('tms.logout-message');
  showLogin(root, msg, (t, sess) => startApp(root, t, sess, logout));
} else {
  void boot();
}
