#!/usr/bin/env bash
# Install what netlab needs on Debian 12, idempotently: system packages (only those
# missing) and a virtualenv in .venv with netlab and its test tools. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

# iproute2: ip/bridge for inspection; nftables: Services and NetworkPolicy (later issues);
# libpcap0.8: BPF filters for scapy captures; iputils-ping: `netlab ping`;
# util-linux: nsenter/unshare to start processes in pods; python3-venv: the virtualenv;
# dnsutils: dig, to query the cluster DNS from inside pods; nginx-light: the Ingress
# controller's data plane; openssl: self-signed certificates; wrk: the Ingress benchmark.
# conntrack: clearing UDP flows to deleted Service endpoints, as kube-proxy does;
# graphviz: `netlab graph`; ruby: the syntax check of vagrant/Vagrantfile (CI cannot boot
# a VM, it checks the file and runs this script, the VM's provisioning, itself).
PACKAGES=(iproute2 nftables libpcap0.8 iputils-ping util-linux procps python3-venv dnsutils
          nginx-light openssl wrk conntrack graphviz ruby)

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/setup.sh must run as root (it installs packages): sudo $0" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # netlab runs nginx inside lab namespaces only: the package's own service must not start
  # on the host. policy-rc.d is Debian's switch for that (only while we install).
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    guard=1
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}" || { [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.netlab-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi

# In the workshop VM (NETLAB_LINK=1, set by vagrant/Vagrantfile): `sudo netlab ...` anywhere.
if [ "${NETLAB_LINK:-}" = 1 ]; then
  ln -sf "$PWD/.venv/bin/netlab" /usr/local/bin/netlab
fi
