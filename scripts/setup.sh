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
# containernetworking-plugins: the CNI reference plugins (/usr/lib/cni) for the lab's CNI
# mode; iptables: the portmap plugin runs it (inside node namespaces only); bird2: the BGP
# speaker of backend bgp (inside node namespaces only; its own service is masked below).
# gcc, libc6-dev: the pods' sandbox helper (netlab/kernel/pause_helper.c), built on first use.
PACKAGES=(iproute2 nftables libpcap0.8 iputils-ping util-linux procps python3-venv dnsutils
          nginx-light openssl wrk conntrack graphviz ruby containernetworking-plugins iptables
          bird2 gcc libc6-dev)

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

# BIRD runs in lab nodes only: the package's bird.service must never start on the host
# (policy-rc.d kept it from starting at install; masking keeps it off at boot and from any
# `systemctl start`). Idempotent: done once, whoever installed the package.
if [ -e /lib/systemd/system/bird.service ] && \
   [ "$(readlink /etc/systemd/system/bird.service 2>/dev/null)" != /dev/null ]; then
  ln -sfn /dev/null /etc/systemd/system/bird.service
  command -v systemctl >/dev/null && systemctl daemon-reload 2>/dev/null || true
  echo "masked bird.service: BIRD runs inside lab nodes only"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.netlab-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing netlab and its test tools into .venv"
  # -qq: pip's errors only. Its warnings here are packaging chatter (setuptools' notices
  # about editable installs and license metadata, index locations): nothing to act on.
  # A failed install still prints pip's error and stops this script (set -e).
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
  .venv/bin/python -m pip install -qq --upgrade pip
  .venv/bin/python -m pip install -qq -e '.[test]'
  touch "$stamp"
fi

# In the workshop VM (NETLAB_LINK=1, set by vagrant/Vagrantfile): `sudo netlab ...` anywhere.
# kube-netlab is always linked. `netlab` is also ipspace's network-lab tool: link ours under
# that name only where nothing else has it (absent, a dangling link, or already one of ours).
if [ "${NETLAB_LINK:-}" = 1 ]; then
  bin=/usr/local/bin
  ln -sfn "$PWD/.venv/bin/kube-netlab" "$bin/kube-netlab"
  echo "linked $bin/kube-netlab -> $PWD/.venv/bin/kube-netlab"
  if [ ! -e "$bin/netlab" ] || grep -qs "from netlab.cli import" "$bin/netlab"; then
    ln -sfn "$PWD/.venv/bin/netlab" "$bin/netlab"
    echo "linked $bin/netlab -> $PWD/.venv/bin/netlab"
  else
    echo "left $bin/netlab alone: it is another program (ipspace's netlab?); use kube-netlab"
  fi
fi
