-- wrk script for the read endpoints: GET with the headers given on the command line (-H),
-- counting answers by status. done() prints one line "BENCH_JSON {...}" (latency in µs).
-- With arguments (-- METHOD BODY) it sends that instead: the minimal app's POST.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   ok2xx, non2xx, statuses = 0, 0, ""
   if args[1] then
      wrk.method, wrk.body = args[1], args[2] or ""
      wrk.headers["Content-Type"] = "application/json"
   end
end

function response(status, hdrs, body)
   if status >= 200 and status < 300 then
      ok2xx = ok2xx + 1
   else
      non2xx = non2xx + 1
      if #statuses < 200 then statuses = statuses .. status .. " " end
   end
end

function done(summary, latency, requests)
   local ok, bad, codes = 0, 0, ""
   for _, thread in ipairs(threads) do
      ok = ok + (thread:get("ok2xx") or 0)
      bad = bad + (thread:get("non2xx") or 0)
      codes = codes .. (thread:get("statuses") or "")
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"ok2xx":%d,"non2xx":%d,"non2xx_codes":"%s",' ..
      '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p95":%d,"p99":%d}}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout, ok, bad, codes,
      latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
      latency:percentile(95), latency:percentile(99)))
end
