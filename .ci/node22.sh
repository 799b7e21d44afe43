#!/usr/bin/env bash
# Node 22 with npm 12, both pinned, from their npm registry packages, unpacked under .ci/cache/ (gitignored).
#
#   .ci/node22.sh COMMAND [ARGS...]   run COMMAND with that node and npm first on PATH, e.g. `.ci/node22.sh npm ci`
#   .ci/node22.sh                     install them if needed and print their bin directory
#
# npm 12 requires Node ^22.22.2 || ^24.15.0 || >=26. It runs dependency install scripts only where package.json's
# allowScripts approves them, which is what CI checks with it. Needs the machine's npm (to fetch the two packages)
# and node (to check their integrity); nothing outside this checkout is written except npm's own cache.
set -euo pipefail

NODE_VERSION=22.23.5
NPM_VERSION=12.2.2
NPM_INTEGRITY=sha512-KglgbZyacf7jH+FHuNRqVuCzQi8VhI2a7J87Ix43FsPTuZoGWmIXXGdZtBUOA79vwL+IJREqURVzupA7PsQTcA==
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64)
    arch=x64
    NODE_INTEGRITY=sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==
    ;;
  Linux-aarch64 | Linux-arm64)
    arch=arm64
    NODE_INTEGRITY=sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg==
    ;;
  *)
    echo "node22.sh: no pinned Node $NODE_VERSION package for $(uname -sm)" >&2
    exit 1
    ;;
esac

cache="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cache"
dir="$cache/node-$NODE_VERSION-npm-$NPM_VERSION-linux-$arch"

# The machine's npm settings (registry, cafile, proxy) live in its global npmrc, which npm 12 would not find: its
# global config is relative to its own prefix. Read it before PATH changes.
: "${npm_config_globalconfig:=$(npm config get globalconfig 2>/dev/null || true)}"

check_integrity() { # FILE EXPECTED: the registry's sha512 integrity string
  local actual
  actual="sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$1")"
  if [ "$actual" != "$2" ]; then
    echo "node22.sh: $1 has integrity $actual, expected $2" >&2
    return 1
  fi
}

if [ ! -x "$dir/bin/npm" ] || [ ! -x "$dir/bin/node" ]; then
  mkdir -p "$cache"
  work="$(mktemp -d "$cache/.install.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent --no-audit --no-fund "node-linux-$arch@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  check_integrity "$work/node-linux-$arch-$NODE_VERSION.tgz" "$NODE_INTEGRITY"
  check_integrity "$work/npm-$NPM_VERSION.tgz" "$NPM_INTEGRITY"
  # The layout of a Node distribution, so that npm finds its prefix and node-gyp finds the headers in include/node.
  mkdir -p "$work/root/lib/node_modules/npm"
  tar -xzf "$work/node-linux-$arch-$NODE_VERSION.tgz" -C "$work/root" --strip-components=1 --no-same-owner \
    package/bin/node package/include
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$work/root/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/root/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/root/bin/npx"
  if [ "$("$work/root/bin/node" --version)" != "v$NODE_VERSION" ]; then
    echo "node22.sh: the unpacked node is not v$NODE_VERSION" >&2
    exit 1
  fi
  # Another run may have finished first: keep whichever copy landed.
  mv -T "$work/root" "$dir" 2>/dev/null || true
  rm -rf "$work"
  trap - EXIT
fi

if [ $# -eq 0 ]; then
  echo "$dir/bin"
  exit 0
fi

export PATH="$dir/bin:$PATH"
export npm_config_globalconfig
# node-gyp (better-sqlite3's build) compiles against Node 22's headers from this directory: not against a nodedir
# from the user's npmrc (another Node's headers give a binary Node 22 refuses), and without downloading headers.
# npm 12 no longer knows a `nodedir` config; node-gyp reads this package-config form first.
export npm_package_config_node_gyp_nodedir="$dir"
exec "$@"
