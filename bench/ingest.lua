-- wrk script: POST /api/events with unique events, as a desktop Chrome tracker would send them.
--
-- Usage (bench/run.py builds this command line):
--   wrk -t2 -c16 -d10s -s bench/ingest.lua http://127.0.0.1:PORT -- KEY BATCH TAG VISITORS
--     KEY       the site's tracker key (X-API-Key)
--     BATCH     events per request (1 sends a bare event object, >1 sends {"events": [...]})
--     TAG       a run tag, unique per scenario: every event_id is TAG-thread-counter-index,
--               so ids never repeat and bench/run.py can count a scenario's stored events
--     VISITORS  how many distinct visitors (user_id/session_id) the events spread over
--
-- done() prints one line "BENCH_JSON {...}" with wrk's counts, the latency percentiles
-- (microseconds) and what the server said it accepted (summed from the 2xx bodies).

local UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 " ..
           "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
local PATHS = { "/", "/pricing", "/blog/", "/blog/realtime-analytics", "/docs/getting-started",
                "/docs/api", "/signup", "/about" }
local REFERRERS = { "", "", "", "https://www.google.com/", "https://news.ycombinator.com/",
                    "https://t.co/abc123", "https://github.com/liveinsight" }

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   key      = args[1]
   batch    = tonumber(args[2]) or 1
   tag      = args[3] or "run"
   visitors = tonumber(args[4]) or 2000
   -- id is set by setup(); seed per thread so threads pick different visitors
   math.randomseed(os.time() + 7919 * (id or 0))
   counter, sent, ok2xx, accepted, duplicates, rejected, non2xx = 0, 0, 0, 0, 0, 0, 0
   statuses = ""
   headers = {
      ["Content-Type"] = "application/json",
      ["X-API-Key"]    = key,
      ["User-Agent"]   = UA,
      ["Origin"]       = "https://bench.example",
   }
end

local function event_json(n)
   local v = math.random(1, visitors)
   local r = math.random()
   local kind = "page_view"
   if r > 0.95 then kind = "click" elseif r > 0.70 then kind = "heartbeat" end
   local path = PATHS[math.random(1, #PATHS)]
   local ref = REFERRERS[math.random(1, #REFERRERS)]
   -- os.time() has second resolution: add the milliseconds at random (within +-1 s of now)
   local ts = os.time() * 1000 + math.random(0, 999)
   return string.format(
      '{"event_id":"%s-%d-%d-%d","type":"%s","timestamp":%d,"user_id":"visitor-%d",' ..
      '"session_id":"session-%d","url":"https://bench.example%s","referrer":"%s",' ..
      '"title":"Bench page"}',
      tag, id, counter, n, kind, ts, v, v, path, ref)
end

function request()
   counter = counter + 1
   sent = sent + 1
   local body
   if batch == 1 then
      body = event_json(1)
   else
      local parts = {}
      for n = 1, batch do parts[n] = event_json(n) end
      body = '{"events":[' .. table.concat(parts, ",") .. ']}'
   end
   return wrk.format("POST", "/api/events", headers, body)
end

function response(status, hdrs, body)
   if status >= 200 and status < 300 then
      ok2xx = ok2xx + 1
      accepted = accepted + (tonumber(body:match('"accepted":%s*(%d+)')) or 0)
      duplicates = duplicates + (tonumber(body:match('"duplicates":%s*(%d+)')) or 0)
      if not body:find('"rejected":%s*%[%]') then rejected = rejected + 1 end
   else
      non2xx = non2xx + 1
      if #statuses < 200 then statuses = statuses .. status .. " " end
   end
end

function done(summary, latency, requests)
   local t = { sent = 0, ok2xx = 0, accepted = 0, duplicates = 0, rejected = 0, non2xx = 0 }
   local codes = ""
   for _, thread in ipairs(threads) do
      for name, _ in pairs(t) do t[name] = t[name] + (thread:get(name) or 0) end
      codes = codes .. (thread:get("statuses") or "")
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"sent":%d,"ok2xx":%d,"accepted":%d,"duplicates":%d,"requests_with_rejections":%d,' ..
      '"non2xx":%d,"non2xx_codes":"%s",' ..
      '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p95":%d,"p99":%d}}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      t.sent, t.ok2xx, t.accepted, t.duplicates, t.rejected, t.non2xx, codes,
      latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
      latency:percentile(95), latency:percentile(99)))
end
