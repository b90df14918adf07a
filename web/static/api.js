// The tracking API, as the page calls it. The access token lives in
// sessionStorage: it survives a reload but not the tab, and is never put in
// a URL the page requests (the fragment it may come in is not sent).

const TOKEN_KEY = 'mailgate.token';

// Unauthorized: the API wants a token, or another one.
export class Unauthorized extends Error {}

// ApiError: the API refused the request; message is its explanation.
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// takeTokenFromFragment moves a "#token=..." fragment into sessionStorage
// and out of the address bar (and so out of history and bookmarks).
export function takeTokenFromFragment() {
  const hash = window.location.hash;
  if (!hash.startsWith('#token=')) return;
  const token = decodeURIComponent(hash.slice('#token='.length));
  if (token) setToken(token);
  history.replaceState(null, '', window.location.pathname + window.location.search + '#/');
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function hasToken() {
  return Boolean(sessionStorage.getItem(TOKEN_KEY));
}

// getJSON fetches an API path with query parameters (a URLSearchParams).
export async function getJSON(path, params) {
  const query = params && params.toString() ? '?' + params.toString() : '';
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(path + query, { headers, cache: 'no-store' });
  const body = await res.json().catch(() => null);
  if (res.status === 401) throw new Unauthorized(errorText(body, res));
  if (!res.ok) throw new ApiError(errorText(body, res), res.status);
  return body;
}

function errorText(body, res) {
  if (body && typeof body.error === 'string') return body.error;
  return `${res.status} ${res.statusText}`;
}

// postJSON posts to an API path (no body) with the token, as getJSON gets.
// The browser adds Origin and Sec-Fetch-Site, by which the gateway knows
// the request comes from its own page.
export async function postJSON(path) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(path, { method: 'POST', headers, cache: 'no-store' });
  const body = await res.json().catch(() => null);
  if (res.status === 401) throw new Unauthorized(errorText(body, res));
  if (!res.ok) throw new ApiError(errorText(body, res), res.status);
  return body;
}
