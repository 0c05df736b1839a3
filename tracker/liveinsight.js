/* LiveInsight visitor tracker.
 * <script defer src="https://HOST/tracker.js" data-key="KEY"></script>
 * Optional: data-api (endpoint), data-flush-ms (5000), data-heartbeat-ms (30000), data-404 (this
 * page is a "not found" page: its path and referrer are reported; or call liveinsight.notFound()).
 * Opt-out: a page URL ending in #liveinsight-opt-out (or liveinsight.optOut()) stops it in this
 * browser until #liveinsight-opt-in (or liveinsight.optIn()) and the next page.
 * Storage: localStorage li_uid (visitor id), li_f (the visitor's first visit, [ms, landing URL,
 * referrer], written once with li_uid: every event's `first`), li_l (time of this browser's last
 * event: the next event's `prev`), li_c (progress in the site's funnels across visits: what the
 * last answer's Li-Carry header said, every event's `carry`), li_q (unsent events), li_out (opted
 * out); sessionStorage li_sid (visit id). With `first` and `prev` the server counts cohort
 * retention, with `carry` funnels across visits, without keeping a visitor table. Opting out
 * removes all but li_out (and li_sid, which ends with the tab).
 * Built by tracker/build.sh into tracker/dist/liveinsight.min.js (served at /tracker.js). */
(() => {
  // Never throw into the host page: every entry point goes through guard(). (No guarded
  // function uses `this`: arrow functions and a spread are shorter than function/apply.)
  const guard = fn => (...args) => { try { return fn(...args) } catch (err) {} };
  guard(() => {
    // Local aliases of globals: the minifier can shorten these, not the globals themselves.
    const win = window, doc = document, loc = location;
    const script = doc.currentScript || doc.querySelector('script[data-key]');
    // No such script: script.dataset throws, and guard() ends the tracker quietly (shorter than a test).
    const options = script.dataset, key = options.key;
    if (!key || win.liveinsight) return; // no key, or already loaded on this page
    // The script's origin + /api/events; fetch and sendBeacon take a URL object as its string.
    const endpoint = options.api || new URL('/api/events', script.src);
    const flushMs = +options.flushMs || 5e3, heartbeatMs = +options.heartbeatMs || 3e4;

    // Unsent events: localStorage 'li_q' (shared with other tabs, survives reloads),
    // in-memory memoryQueue when storage fails. Bounded to the newest 200. An event leaves the
    // queue when it is handed to a request; a failed request puts it back.
    let memoryQueue = [], storageFailed;

    // Every localStorage call goes through storage(): it never throws, it answers undefined when
    // storage does (disabled, full, sandboxed), and any such failure sends the queue to
    // memoryQueue until a save of the queue succeeds (saveQueue below).
    const storage = (method, name, value) => { try { return localStorage[method](name, value) } catch (err) { storageFailed = 1 } };
    // An item's JSON value: null when missing, undefined when storage throws or the item is not JSON.
    const load = name => { try { return JSON.parse(storage('getItem', name)) } catch (err) {} };

    // Opt-out, kept in localStorage 'li_out'; opting out also forgets the visitor (id, first
    // visit, time of the last event, progress in funnels) and unsent events.
    const optOut = () => { storage('setItem', 'li_out', 1); storage('removeItem', 'li_uid'); storage('removeItem', 'li_f'); storage('removeItem', 'li_l'); storage('removeItem', 'li_q'); storage('removeItem', 'li_c'); memoryQueue = [] };
    const optIn = () => storage('removeItem', 'li_out');
    if (loc.hash == '#liveinsight-opt-out') optOut();
    if (loc.hash == '#liveinsight-opt-in') optIn();
    const optedOut = () => storage('getItem', 'li_out');
    // The page's API, whole from the start (no placeholders to replace). Opted out when the page
    // loaded, the code below `return` never runs: track() stays undefined (a const never
    // initialised), so track, conversion and notFound throw inside guard(), i.e. do nothing.
    const api = win.liveinsight = {
      optOut: guard(optOut), optIn: guard(optIn), visitorId: () => optedOut() ? null : userId,
      track: guard((name, props) => track('custom', { name, props })),
      conversion: guard((name, value) => track('conversion', { name, value })),
      notFound: () => api.track('404')
    };
    if (optedOut()) return;

    // A random id: 128 bits as four numbers (getRandomValues works in insecure contexts too,
    // where randomUUID is missing).
    const newId = () => crypto.getRandomValues(new Uint32Array(4)).join('-');
    // The visitor id, localStorage 'li_uid' (this page only when storage throws). When the
    // tracker makes it, it also records, once, 'li_f': the visitor's first visit [ms, landing
    // URL, referrer], sent with every event as `first` so the server knows the visitor's cohort
    // without a visitor table. A visitor from before li_f has none: `first` stays null
    // (unknown), never invented; undefined (not sent) when storage throws. li_f is written
    // first: should li_uid then fail to stick, the next page makes both again.
    // var: visitorId() above may be called before this line runs (opted out, then in).
    var userId = storage('getItem', 'li_uid');
    if (!userId) { storage('setItem', 'li_f', JSON.stringify([Date.now(), loc.href, doc.referrer])); storage('setItem', 'li_uid', userId = newId()) }
    const first = load('li_f');
    // The visit id, sessionStorage 'li_sid': a new one unless storage has one and keeps it
    // (this page only when storage throws).
    let sessionId = newId();
    try { sessionId = sessionStorage.getItem('li_sid') || sessionStorage.setItem('li_sid', sessionId) || sessionId } catch (err) {}

    // Read first: a read that throws sets storageFailed, and memoryQueue is the answer.
    const loadQueue = () => { const queue = load('li_q'); return storageFailed ? memoryQueue : queue || [] };
    const saveQueue = queue => { storageFailed = 0; storage('setItem', 'li_q', JSON.stringify(memoryQueue = queue.slice(-200))) };
    const removeSent = batch => saveQueue(loadQueue().filter(event => !batch.some(sent => sent.event_id == event.event_id)));
    const requestBody = batch => JSON.stringify({ key, events: batch });

    // An event: no page title (nothing on the server reads it, and the bytes paid for li_f, li_l).
    // prev: the time of this browser's previous event on this site, from any tab or page
    // (localStorage 'li_l'; null for the first, undefined (not sent) when storage throws): the
    // server sees a visitor come back without keeping a visitor table. carry: li_c as it is
    // (text the server made; null before any answer), which a visit's first event takes to it.
    const track = (type, fields) => {
      if (optedOut()) return;
      const queue = loadQueue(), timestamp = Date.now();
      // The JSON round trip snapshots props and rejects unserialisable ones (throws here, not at send time).
      queue.push(JSON.parse(JSON.stringify(Object.assign({
        event_id: newId(), type, timestamp, user_id: userId, session_id: sessionId,
        url: loc.href, referrer: doc.referrer, first, prev: load('li_l'), carry: storage('getItem', 'li_c')
      }, fields))));
      storage('setItem', 'li_l', timestamp); // after the push: an event that threw is no event
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
      // then(answered, failed): neither handler can throw (flush is guarded), so no catch.
      fetch(endpoint, { method: 'POST', body: requestBody(batch), keepalive: true, credentials: 'omit' }).then(({ status, headers }) => {
        // Keep the progress the server counted these events made (null without the header:
        // a site without funnels across visits answers "", so that never happens there).
        status < 300 && storage('setItem', 'li_c', headers.get('Li-Carry'));
        if (status < 500 && status != 429) { inFlight = backoffMs = 0; flush() } else backOff(batch, +headers.get('Retry-After'));
      }, () => backOff(batch));
    });
    // Page hidden or going away: hand what is queued to sendBeacon, which the browser delivers
    // after the page is gone, and forget it (a request in flight is delivered the same way:
    // keepalive). Offline, or while the server fails, a beacon is likely lost: keep the events
    // queued too, for the next page (the server ignores an event it has already).
    const beaconAll = guard(() => {
      const queue = loadQueue(), keep = !navigator.onLine || backoffMs;
      for (let start = 0; start < queue.length; start += 50) {
        const batch = queue.slice(start, start + 50);
        if (navigator.sendBeacon(endpoint, requestBody(batch)) && !keep) removeSent(batch);
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
    // visibilitychange and click go from the document on to window, where these listen (the
    // click in the capture phase: before any listener of the page's document or elements).
    addEventListener('visibilitychange', guard(() => doc.hidden && beaconAll()));
    addEventListener('click', guard(event => {
      const target = event.target.closest('a,button'), href = target && target.href; // an SVG <a> has href.baseVal
      if (target) track('click', { props: { text: (target.innerText || '').trim().slice(0, 100), href: href && href.baseVal || href } });
    }), true);
    setInterval(guard(() => doc.hidden || track('heartbeat')), heartbeatMs); // doc.hidden: visibilityState != 'visible'
    setInterval(flush, flushMs);

    track('page_view');
    if ('404' in options) api.notFound();
    flush(); // sends this page view and whatever an earlier page left unsent
  })();
})();
