// The access-token form both pages share: until the token is given (here,
// or in the page's #token= fragment) the API answers 401 and the page asks.
import { setToken, hasToken } from './api.js';
import { byId } from './dom.js';

// installTokenForm makes the form keep the token it is given and then call
// then (the page's router), so the page loads what it was asking for.
export function installTokenForm(then) {
  byId('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = byId('token-input');
    const token = input.value.trim();
    if (!token) return;
    setToken(token);
    input.value = '';
    byId('token-form').hidden = true;
    then();
  });
}

// showTokenForm shows the form: why a token given was refused (reason, the
// API's words), or ask, the page's own request for one.
export function showTokenForm(reason, ask) {
  const form = byId('token-form');
  byId('token-message').textContent = hasToken()
    ? `The access token was not accepted (${reason}). Enter the right one.`
    : ask;
  if (form.hidden) {
    form.hidden = false;
    byId('token-input').focus();
  }
}
