#!/usr/bin/env bash
# Installs what beamprof needs to build and test, when it is missing.
# Debian/Ubuntu: installs the packages with apt-get (as root, or through sudo).
# Elsewhere: says what to install and stops.
# `setup.sh --list` prints the Debian packages (scripts/otp_matrix.sh installs them in its roots);
# `setup.sh --host-list` the ones installed on the host only, never in those roots: golang-go,
# whose `go tool pprof` is the second reader of beamprof's pprof files in
# test/beamprof_pprof_SUITE (the suite skips that case where go is absent; the roots check the
# files with the suite's own profile.proto decoder). beamprof itself never needs Go.
set -euo pipefail

packages=(erlang-nox erlang-dev erlang-common-test erlang-dialyzer erlang-proper-dev
          erlang-eunit erlang-tools rebar3 elixir libunwind-dev gcc make
          gcc-aarch64-linux-gnu libc6-dev-arm64-cross  # make test: the core built for aarch64
          chromium)  # chromium: the flame graph suite opens the SVG and HTML headless

host_packages=(golang-go)  # go tool pprof reads the pprof files in beamprof_pprof_SUITE

if [ "${1:-}" = --list ]; then echo "${packages[*]}"; exit 0; fi
if [ "${1:-}" = --host-list ]; then echo "${host_packages[*]}"; exit 0; fi
packages+=("${host_packages[@]}")

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
else
  for c in erl erlc rebar3 elixir mix gcc make; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    cat >&2 <<MSG
beamprof needs: Erlang/OTP 25 or later with its development headers (erl_nif.h),
common_test, dialyzer and PropEr (its header proper.hrl), rebar3, Elixir 1.14 or later
(for the mix build and ExUnit tests), a C11 compiler, GNU make, libunwind's headers (the
native sampler, x86_64 only) and, for make test's aarch64 check, aarch64-linux-gnu-gcc.
Optional: Go (its go tool pprof reads the pprof test files; the suite skips it without Go).
Missing here: ${missing[*]}
Install them with your system's package manager (Fedora: erlang erlang-proper rebar3 elixir
libunwind-devel gcc-aarch64-linux-gnu) and run this again. beamprof builds on Linux only.
MSG
    exit 1
  fi
  exit 0
fi

[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
  echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
