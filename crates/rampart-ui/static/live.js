// Rampart dashboard: live updates, a progressive enhancement. A page that shows runs marks its
// <main> with data-live ("fleet", or "agent:ID"); when the server says a run was stored for
// what it shows, the page's content is fetched again and put in place. Without this script
// the pages are the same, only not live.
'use strict';
(() => {
  const main = document.querySelector('main[data-live]');
  if (!main || !('EventSource' in window)) return;
  const want = main.dataset.live;
  let busy = false;
  let again = false;
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const r = await fetch(window.location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
      if (!r.ok) return;
      const fresh = new DOMParser().parseFromString(await r.text(), 'text/html').querySelector('main');
      if (fresh) {
        main.replaceChildren(...fresh.childNodes);
        main.dataset.updated = new Date().toISOString();
      }
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  };
  const events = new EventSource('/ui/events');
  events.addEventListener('run', (e) => {
    const run = JSON.parse(e.data);
    if (want === 'fleet' || want === `agent:${run.agent}`) refresh();
  });
  events.addEventListener('reload', refresh);
})();
