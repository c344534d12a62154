// JSON calls to the console's API (docs/CONSOLE.md). The session is the HttpOnly
// cookie the login sets; every POST also carries the session's CSRF token.

let csrf = null;

/** Remember the CSRF token of the session (from POST /api/login or GET /api/me). */
export function setCsrf(token) {
  csrf = token || null;
}

/** A refused request: status is the HTTP status (0 when the server was not reached). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method === 'POST' && csrf) headers['X-CSRF-Token'] = csrf;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, e && e.message ? e.message : String(e));
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    // The server's errors are {"error": "..."} naming the field at fault.
    const msg = data && typeof data.error === 'string' ? data.error : `HTTP ${res.status}${text && !data ? `: ${text.slice(0, 200)}` : ''}`;
    throw new ApiError(res.status, msg);
  }
  return data;
}

export const api = {
  get: (path) => call('GET', path),
  post: (path, body) => call('POST', path, body === undefined ? {} : body),
};
