#!/usr/bin/env bash
# Installs the pinned JS interop toolchain (tests/interop/node_modules) for CI and local runs.
# Runs `npm ci` only when node_modules is missing or package-lock.json changed since the last install
# (tracked by a sha256 stamp inside node_modules), then prints the versions of node and the key packages.
set -euo pipefail
cd "$(dirname "$0")"

command -v node >/dev/null || { echo "install.sh: node not found (Node.js >= 20 required)" >&2; exit 1; }
command -v npm >/dev/null || { echo "install.sh: npm not found" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then echo "install.sh: Node.js >= 20 required, found $(node --version)" >&2; exit 1; fi

stamp=node_modules/.op-p2p-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ ! -d node_modules ] || [ "$want" != "$have" ]; then
  echo "install.sh: running npm ci"
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
else
  echo "install.sh: node_modules up to date with package-lock.json"
fi

# ---- anvil (L1 for the L1-signer tests): its own package in ../anvil, installed the same way ----
anvil_stamp=../anvil/node_modules/.op-p2p-lock.sha256
anvil_want=$(sha256sum ../anvil/package-lock.json | cut -d' ' -f1)
anvil_have=$(cat "$anvil_stamp" 2>/dev/null || true)
if [ ! -d ../anvil/node_modules ] || [ "$anvil_want" != "$anvil_have" ]; then
  echo "install.sh: running npm ci in tests/anvil"
  (cd ../anvil && npm ci --no-audit --no-fund)
  echo "$anvil_want" > "$anvil_stamp"
fi
printf 'anvil %s\n' "$(../anvil/node_modules/@foundry-rs/anvil-*/bin/anvil --version | head -1)"
# ---- end anvil ----

echo "node $(node --version), npm $(npm --version)"
for p in libp2p @chainsafe/libp2p-gossipsub @chainsafe/libp2p-noise @chainsafe/libp2p-yamux @libp2p/tcp \
         @libp2p/identify @libp2p/ping @libp2p/crypto @libp2p/peer-id @chainsafe/discv5 @chainsafe/enr \
         @multiformats/multiaddr snappyjs @libp2p/interface; do
  printf '%s %s\n' "$p" "$(node -p "require('./node_modules/$p/package.json').version")"
done
