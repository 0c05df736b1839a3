/* LiveInsight visitor tracker.
 * <script defer src="https://HOST/tracker.js" data-key="KEY"></script>
 * Optional: data-api (endpoint), data-flush-ms (5000), data-heartbeat-ms (30000).
 * Built by tracker/build.sh into tracker/dist/liveinsight.min.js (served at /tracker.js). */
(() => {
  // Never throw into the host page: every entry point goes through g().
  const g = f => function () { try { return f.apply(this, arguments) } catch (e) {} };
  g(() => {
    const W = window, D = document, N = navigator, L = location;
    const sc = D.currentScript || D.querySelector('script[data-key]');
    const d = sc && sc.dataset, K = d && d.key;
    if (!K || W.liveinsight) return; // no key, or already loaded on this page
    const E = d.api || new URL(sc.src).origin + '/api/events';
    const F = +d.flushMs || 5e3, H = +d.heartbeatMs || 3e4;

    // Random UUID; the fallback covers insecure contexts where randomUUID is missing.
    const uid = () => {
      try { return crypto.randomUUID() } catch (e) {
        return '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, c => (c ^ Math.random() * 16 >> c / 4).toString(16));
      }
    };
    // Id persisted in a storage; in-memory (this page only) when storage throws.
    const pid = (n, k) => {
      try { const s = W[n]; let v = s.getItem(k); if (!v) s.setItem(k, v = uid()); return v } catch (e) { return uid() }
    };
    const U = pid('localStorage', 'li_uid'), S = pid('sessionStorage', 'li_sid');

    // Unsent events: localStorage 'li_q' (shared with other tabs, survives reloads),
    // in-memory M when storage fails. Bounded to the newest 200.
    let M = [], mem;
    const ld = () => {
      if (!mem) try { return JSON.parse(localStorage.getItem('li_q') || '[]') } catch (e) { mem = 1 }
      return M;
    };
    const sv = q => {
      M = q.slice(-200);
      try { localStorage.setItem('li_q', JSON.stringify(M)); mem = 0 } catch (e) { mem = 1 }
    };
    const rm = b => { const ids = b.map(e => e.event_id); sv(ld().filter(e => !ids.includes(e.event_id))) };
    const body = b => JSON.stringify({ key: K, events: b });

    const tr = (type, x) => {
      const q = ld();
      // The JSON round trip snapshots props and rejects unserialisable ones (throws here, not at send time).
      q.push(JSON.parse(JSON.stringify(Object.assign({
        event_id: uid(), type, timestamp: Date.now(), user_id: U, session_id: S,
        url: L.href, referrer: D.referrer, title: D.title
      }, x))));
      sv(q);
    };

    // Flush: one request of <= 50 events at a time. 2xx: sent; 4xx other than 429: will never
    // succeed, drop; network error, 5xx, 429: keep and back off (F doubling to 5 min, or Retry-After).
    let busy, wait = 0, until = 0;
    const retry = ra => {
      busy = 0; wait = Math.min(wait ? wait * 2 : F, 3e5);
      until = Date.now() + (ra > 0 ? ra * 1e3 : wait);
    };
    const fl = g(() => {
      const b = ld().slice(0, 50);
      if (busy || Date.now() < until || !b.length) return;
      busy = fetch(E, {
        method: 'POST', body: body(b), keepalive: true, credentials: 'omit',
        headers: { 'Content-Type': 'text/plain' }
      }).then(r => {
        const s = r.status;
        if (s < 500 && s != 429) { rm(b); busy = wait = 0; fl() } else retry(+r.headers.get('Retry-After'));
      }).catch(() => retry());
    });
    // Page going away: beacon everything but keep it queued (no answer); resent on the next
    // load, and the server deduplicates by event_id.
    const bc = g(() => {
      const q = ld();
      for (let i = 0; i < q.length; i += 50) N.sendBeacon(E, new Blob([body(q.slice(i, i + 50))], { type: 'text/plain' }));
    });

    // Page views, including SPA navigation (only when the URL really changed).
    let last = L.href;
    const nav = g(() => { if (L.href != last) { last = L.href; tr('page_view') } });
    ['pushState', 'replaceState'].forEach(k => {
      const o = history[k];
      history[k] = function () { const r = o.apply(this, arguments); nav(); return r };
    });
    addEventListener('popstate', nav);
    addEventListener('pagehide', bc);
    D.addEventListener('visibilitychange', g(() => { if (D.visibilityState == 'hidden') bc() }));
    D.addEventListener('click', g(e => {
      const t = e.target.closest('a,button'), h = t && t.href; // an SVG <a> has href.baseVal
      if (t) tr('click', { props: { text: (t.innerText || '').trim().slice(0, 100), href: h && h.baseVal || h } });
    }), true);
    setInterval(g(() => { if (D.visibilityState == 'visible') tr('heartbeat') }), H);
    setInterval(fl, F);

    W.liveinsight = {
      track: g((name, props) => tr('custom', { name, props })),
      conversion: g((name, value) => tr('conversion', { name, value }))
    };
    tr('page_view');
    fl(); // sends this page view and whatever an earlier page left unsent
  })();
})();
