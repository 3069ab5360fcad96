#!/usr/bin/env bash
# Installs what fusebox's demo needs (and, with --test, what its tests need
# too) on a Debian machine, when run as root; otherwise says exactly what to
# install. Idempotent and quiet when everything is already there.
set -euo pipefail

tests=false
if [ "${1:-}" = "--test" ]; then
	tests=true
	shift
fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
# The test image needs a statically linked busybox (Debian's busybox-static).
if ! { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }; then
	need+=(busybox-static)
fi
# promtool checks the shipped alert rules and a live /metrics scrape in the
# tests (internal/metrics); Debian ships it in the prometheus package. Only the
# tool is needed: no Prometheus server is configured or started for fusebox.
# The dashboard's browser test (internal/ui) drives Debian's chromium
# headless through chromedp.
if $tests; then
	command -v promtool >/dev/null 2>&1 || need+=(prometheus)
	command -v chromium >/dev/null 2>&1 || need+=(chromium)
	# The registry tests run Debian's docker-registry (the CNCF distribution
	# registry) with htpasswd auth; apache2-utils' htpasswd makes the file.
	[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
	command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
fi
for extra in "$@"; do
	command -v "$extra" >/dev/null 2>&1 || need+=("$extra")
done

if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "fusebox: missing packages: ${need[*]}" >&2
	echo "install them with:  sudo apt-get install -y ${need[*]}" >&2
	echo "(the tests also start private Docker daemons, which needs root)" >&2
	exit 1
fi

echo "fusebox: installing ${need[*]} (Debian packages)" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# apt's chatter (debconf notices included) is shown only if it fails.
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "fusebox: installing ${need[*]} failed" >&2
	exit 1
fi
echo "fusebox: installed ${need[*]}" >&2
