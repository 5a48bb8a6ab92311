#!/usr/bin/env bash
# Install what is missing, bring up scenarios/quickstart.yaml, show the pods and ping
# across nodes. The lab stays up: explore it with .venv/bin/netlab, remove it with
# `.venv/bin/netlab down quickstart`.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
netlab=.venv/bin/netlab
$netlab down quickstart >/dev/null
$netlab up -f scenarios/quickstart.yaml
echo
echo "\$ netlab ping pod-a pod-b     # pod-a is on node-1, pod-b on node-2: through VXLAN"
$netlab ping pod-a pod-b
echo
echo "The lab is up. Try: $netlab get nodes -o wide; $netlab logs pod-a;"
echo "  $netlab exec pod-a -- ip route; and finally: $netlab down quickstart"
