-- wrk script for both intake runs: the same JSON body on every request, with a unique id put
-- in place of __ID__ (thread number + counter), so conditional puts never collide.
-- Arguments after `--`: <body file> <method> <content-type> <id prefix> [<header>=<value> ...]
local threads = {}

function setup(thread)
  thread:set("number", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  template = file:read("*a")
  file:close()
  wrk.method = args[2]
  wrk.headers["Content-Type"] = args[3]
  prefix = args[4]
  for i = 5, #args do
    local name, value = args[i]:match("^([^=]+)=(.*)$")
    wrk.headers[name] = value
  end
  counter = 0
end

function request()
  counter = counter + 1
  local id = string.format("%s-%d-%d", prefix, number, counter)
  local body = template:gsub("__ID__", id)
  return wrk.format(nil, nil, nil, body)
end

-- One JSON line for bench/intake_bench.py: throughput, latency percentiles (us), errors.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
