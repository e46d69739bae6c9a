#!/usr/bin/env bash
# Two `jagged serve` replicas behind nginx (Debian's nginx-light) as the load balancer, all on loopback: runs the
# bounded load test (bench/serve_load.mjs) through nginx, then shows from each replica's /metrics that both served.
# Replicas hold no state between requests, so any HTTP load balancer works the same way (/health as readiness).
#   bash scripts/serve_replicas.sh [MODEL] [CLIENTS=32] [REQUESTS=5] [MAX_TOKENS=32]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-../shared/models/stories260K/stories260K.bin}
clients=${2:-32}
requests=${3:-5}
max_tokens=${4:-32}
command -v nginx >/dev/null || { echo "serve_replicas: nginx is missing (apt-get install nginx-light)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

ports=()
for replica in 0 1; do
  ./build/jagged serve --model "$model" --port 0 --threads 1 --max-concurrent "$clients" >"$work/replica$replica.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do grep -q "model loaded" "$work/replica$replica.log" && break; sleep 0.1; done
  ports+=("$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/replica$replica.log")")
done
front=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<CONF
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  upstream jagged { least_conn; server 127.0.0.1:${ports[0]}; server 127.0.0.1:${ports[1]}; keepalive 64; }
  server {
    listen 127.0.0.1:$front;
    location / {
      proxy_pass http://jagged;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;        # server-sent events pass through as they come
      proxy_read_timeout 300s;
    }
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$front/health" >/dev/null && break; sleep 0.1; done

node bench/serve_load.mjs --url "http://127.0.0.1:$front" --clients "$clients" --requests "$requests" \
  --max-tokens "$max_tokens" --label "nginx -> 2 x jagged serve"
served=()
for replica in 0 1; do
  count=$(curl -s "http://127.0.0.1:${ports[$replica]}/metrics" |
          sed -n 's/^jagged_requests_total{route="\/v1\/completions"} \([0-9]*\)$/\1/p')
  echo "replica $replica (port ${ports[$replica]}): ${count:-0} completions" >&2
  served+=("${count:-0}")
done
kill -TERM "${pids[2]}"
for replica in 0 1; do kill -TERM "${pids[$replica]}"; done
for replica in 0 1; do wait "${pids[$replica]}" || { echo "replica $replica did not exit 0" >&2; exit 1; }; done
[ "${served[0]}" -gt 0 ] && [ "${served[1]}" -gt 0 ] || { echo "serve_replicas: a replica served nothing" >&2; exit 1; }
echo "serve_replicas: both replicas served; both exited 0 on SIGTERM" >&2
