/* LiveInsight visitor tracker.
 * <script defer src="https://HOST/tracker.js" data-key="KEY"></script>
 * Optional: data-api (endpoint), data-flush-ms (5000), data-heartbeat-ms (30000), data-404 (this
 * page is a "not found" page: its path and referrer are reported; or call liveinsight.notFound()).
 * Opt-out: a page URL ending in #liveinsight-opt-out (or liveinsight.optOut()) stops it in this
 * browser until #liveinsight-opt-in (or liveinsight.optIn()) and the next page.
 * Built by tracker/build.sh into tracker/dist/liveinsight.min.js (served at /tracker.js). */
(() => {
  // Never throw into the host page: every entry point goes through guard().
  const guard = fn => function () { try { return fn.apply(this, arguments) } catch (err) {} };
  guard(() => {
    // Local aliases of globals: the minifier can shorten these, not the globals themselves.
    const win = window, doc = document, nav = navigator, loc = location;
    const script = doc.currentScript || doc.querySelector('script[data-key]');
    const options = script && script.dataset, key = options && options.key;
    if (!key || win.liveinsight) return; // no key, or already loaded on this page
    const endpoint = options.api || new URL(script.src).origin + '/api/events';
    const flushMs = +options.flushMs || 5e3, heartbeatMs = +options.heartbeatMs || 3e4;

    // Unsent events: localStorage 'li_q' (shared with other tabs, survives reloads),
    // in-memory memoryQueue when storage fails. Bounded to the newest 200. An event leaves the
    // queue when it is handed to a request; a failed request puts it back.
    let memoryQueue = [], storageFailed;

    // Opt-out, kept in localStorage 'li_out'; opting out also forgets the id and unsent events.
    const storage = (method, name, value) => { try { return localStorage[method](name, value) } catch (err) {} };
    const optOut = () => { storage('setItem', 'li_out', 1); storage('removeItem', 'li_uid'); storage('removeItem', 'li_q'); memoryQueue = [] };
    const optIn = () => storage('removeItem', 'li_out');
    if (loc.hash == '#liveinsight-opt-out') optOut();
    if (loc.hash == '#liveinsight-opt-in') optIn();
    const optedOut = () => storage('getItem', 'li_out');
    const api = win.liveinsight = { optOut: guard(optOut), optIn: guard(optIn), visitorId: () => optedOut() ? null : userId, track() {}, conversion() {}, notFound() {} };
    if (optedOut()) return;

    // Random UUID; the fallback covers insecure contexts where randomUUID is missing.
    const newId = () => {
      try { return crypto.randomUUID() } catch (err) {
        return '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, digit => (digit ^ Math.random() * 16 >> digit / 4).toString(16));
      }
    };
    // Id persisted in a storage; in-memory (this page only) when storage throws.
    const persistentId = (storageName, itemName) => {
      try {
        const storage = win[storageName];
        let id = storage.getItem(itemName);
        if (!id) storage.setItem(itemName, id = newId());
        return id;
      } catch (err) { return newId() }
    };
    // var: visitorId() above may be called before this line runs (opted out, then in).
    var userId = persistentId('localStorage', 'li_uid'); const sessionId = persistentId('sessionStorage', 'li_sid');

    const loadQueue = () => {
      if (!storageFailed) try { return JSON.parse(localStorage.getItem('li_q') || '[]') } catch (err) { storageFailed = 1 }
      return memoryQueue;
    };
    const saveQueue = queue => {
      memoryQueue = queue.slice(-200);
      try { localStorage.setItem('li_q', JSON.stringify(memoryQueue)); storageFailed = 0 } catch (err) { storageFailed = 1 }
    };
    const removeSent = batch => {
      const sentIds = batch.map(event => event.event_id);
      saveQueue(loadQueue().filter(event => !sentIds.includes(event.event_id)));
    };
    const requestBody = batch => JSON.stringify({ key, events: batch });

    const track = (type, fields) => {
      if (optedOut()) return;
      const queue = loadQueue();
      // The JSON round trip snapshots props and rejects unserialisable ones (throws here, not at send time).
      queue.push(JSON.parse(JSON.stringify(Object.assign({
        event_id: newId(), type, timestamp: Date.now(), user_id: userId, session_id: sessionId,
        url: loc.href, referrer: doc.referrer, title: doc.title
      }, fields))));
      saveQueue(queue);
    };

    // Flush: one request of <= 50 events at a time, when something is worth sending: any event
    // but a heartbeat, or a heartbeat held for two heartbeat periods (heartbeats ride along
    // with other events, or go three at a time). 2xx: sent; 4xx other than 429: will never
    // succeed, drop; network error, 5xx, 429: put back, back off (flushMs doubling to 5 min, or
    // Retry-After). inFlight holds the batch being sent.
    // leaving: the page is being unloaded. Its requests in flight go on (keepalive) though their
    // promises fail now: such a failure must not put their events back for the next page to resend.
    let inFlight, leaving, backoffMs = 0, retryAt = 0;
    const backOff = (batch, retryAfterS) => {
      inFlight = 0; leaving || saveQueue(batch.concat(loadQueue()));
      backoffMs = Math.min(backoffMs ? backoffMs * 2 : flushMs, 3e5);
      retryAt = Date.now() + (retryAfterS > 0 ? retryAfterS * 1e3 : backoffMs);
    };
    const flush = guard(() => {
      const queue = loadQueue(), batch = queue.slice(0, 50);
      if (inFlight || Date.now() < retryAt || !queue.some(event => event.type != 'heartbeat' || Date.now() - event.timestamp >= 2 * heartbeatMs)) return;
      // Off the stored queue while in flight: another tab, or this page's exit, must not send them again.
      inFlight = batch; removeSent(batch);
      // A string body goes as text/plain: a "simple" request, no CORS preflight.
      fetch(endpoint, { method: 'POST', body: requestBody(batch), keepalive: true, credentials: 'omit' }).then(response => {
        const status = response.status;
        if (status < 500 && status != 429) { inFlight = backoffMs = 0; flush() } else backOff(batch, +response.headers.get('Retry-After'));
      }).catch(() => backOff(batch));
    });
    // Page hidden or going away: hand what is queued to sendBeacon, which the browser delivers
    // after the page is gone, and forget it (a request in flight is delivered the same way:
    // keepalive). Offline, or while the server fails, a beacon is likely lost: keep the events
    // queued too, for the next page (the server ignores an event it has already).
    const beaconAll = guard(() => {
      const queue = loadQueue(), keep = !nav.onLine || backoffMs;
      for (let start = 0; start < queue.length; start += 50) {
        const batch = queue.slice(start, start + 50);
        if (nav.sendBeacon(endpoint, requestBody(batch)) && !keep) removeSent(batch);
      }
    });

    // Page views, including SPA navigation (only when the URL really changed).
    let lastUrl = loc.href;
    const trackNavigation = guard(() => { if (loc.href != lastUrl) { lastUrl = loc.href; track('page_view') } });
    ['pushState', 'replaceState'].forEach(method => {
      const original = history[method];
      history[method] = function () { const result = original.apply(this, arguments); trackNavigation(); return result };
    });
    addEventListener('popstate', trackNavigation);
    addEventListener('pagehide', () => { leaving = 1; beaconAll() });
    addEventListener('pageshow', () => { leaving = 0 }); // back from the back-forward cache
    doc.addEventListener('visibilitychange', guard(() => { if (doc.visibilityState == 'hidden') beaconAll() }));
    doc.addEventListener('click', guard(event => {
      const target = event.target.closest('a,button'), href = target && target.href; // an SVG <a> has href.baseVal
      if (target) track('click', { props: { text: (target.innerText || '').trim().slice(0, 100), href: href && href.baseVal || href } });
    }), true);
    setInterval(guard(() => { if (doc.visibilityState == 'visible') track('heartbeat') }), heartbeatMs);
    setInterval(flush, flushMs);

    api.track = guard((name, props) => track('custom', { name, props }));
    api.conversion = guard((name, value) => track('conversion', { name, value }));
    api.notFound = () => api.track('404');
    track('page_view');
    if ('404' in options) api.notFound();
    flush(); // sends this page view and whatever an earlier page left unsent
  })();
})();
