// The sample page's script: shows the backend's health, as the React app calls the API.
const status = document.getElementById('status');
fetch('/api/health', { headers: { Accept: 'application/json' } })
  .then((r) => r.json())
  .then((j) => { status.textContent = `${j.status} ${JSON.stringify(j.checks || {})}`; })
  .catch((e) => { status.textContent = `unreachable (${e})`; });
