-- wrk script: POST the example discharge Bundle to $code (persistence on).
-- Run: wrk -t2 -c16 -d30s -s bench/code_post.lua --latency http://127.0.0.1:8080/fhir/Bundle/\$code
local f = assert(io.open("examples/requests/discharge-bundle.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/fhir+json"
local errors = 0
response = function(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("non-200 responses: %d\n", summary.errors.status))
end
