#!/usr/bin/env bash
# The OTP test matrix: the whole test suite (`make test` less the matrix itself) on
# real OTP releases, each in a Debian root of the suite that packages it, made with
# `debootstrap --variant=minbase` under _build/otp/<suite> on first use and reused after.
#
#   scripts/otp_matrix.sh run 27|29|all   make the root(s) if needed, run every suite there,
#                                         print a summary; exits non-zero if a step failed
#   scripts/otp_matrix.sh test            what `make test` runs: `run all` as BEAMPROF_MATRIX
#                                         says (auto: run when this machine can, else say so
#                                         in one line and pass; required: fail when it cannot;
#                                         off: skip)
#   scripts/otp_matrix.sh check           can this machine run the matrix? (installs debootstrap
#                                         through apt when it is missing)
#   scripts/otp_matrix.sh unmount         undo every mount under every root
#   scripts/otp_matrix.sh clean           unmount, then remove the roots
#
# Needs root (chroot and mounts), debootstrap and the Debian mirror the host's apt sources
# name (BEAMPROF_DEBIAN_MIRROR overrides it) until a root is made. While a release runs,
# /proc, /dev, /dev/pts and a tmpfs on /dev/shm are mounted in its root; every mount is
# undone when the run ends, however it ends. A root is never removed while anything is
# mounted under it: removing a root with /dev bound would delete the host's device nodes.
set -euo pipefail

RELEASES=(27 29)
suite_of() { case "$1" in 27|trixie) echo trixie ;; 29|forky) echo forky ;; *) return 1 ;; esac; }
release_of() { case "$1" in trixie) echo 27 ;; forky) echo 29 ;; esac; }
releases_text() { echo "${RELEASES[*]}" | sed 's/ \([^ ]*\)$/ and \1/'; }

project=$(cd "$(dirname "$0")/.." && pwd -P)
otp_dir=$(realpath -m "${BEAMPROF_OTP_DIR:-$project/_build/otp}")
step_timeout=${BEAMPROF_MATRIX_STEP_TIMEOUT:-1800}   # seconds; a hung suite must not hang CI
base_marker=.beamprof-base        # debootstrap finished
pkgs_marker=.beamprof-packages    # holds the package list installed in the root
in_root_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

fmt_time() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
say() { printf 'otp matrix: %s\n' "$*"; }
die() { printf 'otp matrix: %s\n' "$*" >&2; exit 1; }

# ---- mounts ------------------------------------------------------------------------------

# Mount points at or under $1, deepest first.
mounts_under() {
  [ -r /proc/self/mountinfo ] || return 0
  awk -v r="$1" '{ m = $5; gsub(/\\040/, " ", m)
                   if (m == r || index(m, r "/") == 1) print length(m) "\t" m }' \
    /proc/self/mountinfo | sort -rn -k1,1 | cut -f2-
}

is_mounted_under() { [ -n "$(mounts_under "$1")" ]; }

# Mounts what a run needs; each only if it is not already a mount point.
mount_root() {
  local root=$1
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc" || return 1
  if ! mountpoint -q "$root/dev"; then
    mount --bind /dev "$root/dev" || return 1
    # Private: nothing mounted under it below reaches the host's /dev.
    mount --make-private "$root/dev" || return 1
  fi
  if [ -d /dev/pts ] && ! mountpoint -q "$root/dev/pts"; then
    mount --bind /dev/pts "$root/dev/pts" && mount --make-private "$root/dev/pts" || return 1
  fi
  # Chromium needs a writable /dev/shm: a tmpfs of the root's own, not the host's.
  mountpoint -q "$root/dev/shm" ||
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm" || return 1
}

# Ends what still runs inside the root (e.g. an epmd the suites started), then undoes
# every mount under it, deepest first; a busy mount is detached lazily.
unmount_root() {
  local root=$1 m tries=0
  stop_root_processes "$root"
  while is_mounted_under "$root"; do
    tries=$((tries + 1))
    while IFS= read -r m; do
      if [ "$tries" -le 3 ]; then umount -- "$m" 2>/dev/null || true
      else umount -l -- "$m" || true
      fi
    done < <(mounts_under "$root")
    [ "$tries" -ge 5 ] && break
  done
  if is_mounted_under "$root"; then
    say "still mounted under $root:" >&2; mounts_under "$root" >&2; return 1
  fi
}

# Pids of the processes whose root directory is $1 (those our chroots started).
root_processes() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
  done
  return 0
}

stop_root_processes() {
  local root=$1 pids deadline
  pids=$(root_processes "$root")
  [ -z "$pids" ] && return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  deadline=$((SECONDS + 10))
  while [ -n "$(root_processes "$root")" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  pids=$(root_processes "$root")
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
}

# Every root under $otp_dir, whole or half-made (every directory but logs/).
all_roots() {
  local d
  for d in "$otp_dir"/*/; do
    [ -d "$d" ] && [ "$d" != "$otp_dir/logs/" ] && printf '%s\n' "${d%/}"
  done
  return 0
}

unmount_all() {
  local root rc=0
  [ -d "$otp_dir" ] || return 0
  while IFS= read -r root; do unmount_root "$root" || rc=1; done < <(all_roots)
  return $rc
}

# Removes a root, only when nothing is mounted under it, and never across file systems.
remove_root() {
  local root=$1
  case "$root" in "$otp_dir"/?*) ;; *) die "refusing to remove $root: not a root of $otp_dir" ;; esac
  unmount_root "$root" || die "refusing to remove $root: something is still mounted under it"
  is_mounted_under "$root" && die "refusing to remove $root: something is still mounted under it"
  rm -rf --one-file-system -- "$root"
}

# ---- the run's child and its cleanup -----------------------------------------------------

child=""          # the step running now (a `timeout` process leading its own group)
active_root=""    # the root whose mounts this (sub)shell made
builders=()       # subshells making roots in parallel

# On any exit: stop what runs, undo the mounts. A root builder undoes its own root's.
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${builders[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${builders[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  if [ -n "$active_root" ]; then
    unmount_root "$active_root" || rc=1
  fi
  exit "$rc"
}

on_signal() { say "interrupted (signal $1); stopping and unmounting"; exit $((128 + $1)); }

set_traps() {
  trap cleanup EXIT
  trap 'on_signal 2' INT
  trap 'on_signal 15' TERM
}

# Runs "$@" in the background (under `timeout`, which leads the process group of all
# it starts), its output appended to $log and, when $2 is "show", shown as it comes; waits
# for it so that a signal to this script is handled at once. Returns its status.
run_logged() {
  local log=$1 show=$2 rc=0 size tailer=""; shift 2
  touch "$log"; size=$(stat -c %s "$log")
  timeout -k 30 "$step_timeout" "$@" >> "$log" 2>&1 < /dev/null 9>&- &   # fd 9: the run's lock
  child=$!
  if [ "$show" = show ]; then
    tail -c +$((size + 1)) --pid="$child" -f "$log" & tailer=$!
  fi
  wait "$child" || rc=$?
  child=""
  [ -z "$tailer" ] || { wait "$tailer" || true; [ -z "$(tail -c 1 "$log")" ] || echo; }
  [ "$rc" -ne 124 ] || say "timed out after ${step_timeout}s: $*" | tee -a "$log"
  return "$rc"
}

# A clean environment inside a root (a command: `chroot ROOT "${root_env[@]}" CMD...`).
root_env=(/usr/bin/env -i HOME=/root PATH="$in_root_path" LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=dumb
          REBAR_COLOR=none BEAMPROF_MATRIX=off DEBIAN_FRONTEND=noninteractive)
in_root() { chroot "$1" "${root_env[@]}" "${@:2}"; }

# ---- can this machine run it? --------------------------------------------------------

# The Debian mirror the host's apt sources name (not its security archive).
debian_mirror() {
  local m=""
  if [ -n "${BEAMPROF_DEBIAN_MIRROR:-}" ]; then echo "$BEAMPROF_DEBIAN_MIRROR"; return; fi
  if grep -qsi '^ID=debian' /etc/os-release; then
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
      m=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
      m=$(awk '$1 == "deb" && $0 !~ /security/ {
                 for (i = 2; i <= NF; i++) if ($i ~ /^(https?|ftp):\/\//) { print $i; exit } }' \
            /etc/apt/sources.list)
    fi
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

debootstrap_script() {
  if [ -e "/usr/share/debootstrap/scripts/$1" ]; then echo "/usr/share/debootstrap/scripts/$1"
  else echo /usr/share/debootstrap/scripts/sid   # forky: the host's debootstrap may predate it
  fi
}

root_complete() { [ -e "$otp_dir/$1/$base_marker" ] && [ -e "$otp_dir/$1/$pkgs_marker" ]; }

mirror_reachable() {
  local url; url="$(debian_mirror)/dists/$1/Release"
  if command -v wget >/dev/null 2>&1; then wget -q --spider --timeout=15 --tries=2 "$url"
  elif command -v curl >/dev/null 2>&1; then curl -fsI --max-time 15 "$url" >/dev/null
  else return 1
  fi
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || return 1
  say "installing debootstrap" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    debootstrap debian-archive-keyring wget >/dev/null 2>&1 || return 1
  command -v debootstrap >/dev/null 2>&1
}

# Prints why this machine cannot run the given suites, or nothing when it can.
cannot_reason() {
  local s need_boot=""
  [ "$(uname -s)" = Linux ] || { echo "needs Linux"; return; }
  [ "$(id -u)" -eq 0 ] || { echo "needs root, for chroot and mounts"; return; }
  for c in chroot mount umount mountpoint timeout flock; do
    command -v "$c" >/dev/null 2>&1 || { echo "needs $c"; return; }
  done
  for s in "$@"; do root_complete "$s" || need_boot="$need_boot $s"; done
  [ -z "$need_boot" ] && return 0
  ensure_debootstrap || { echo "needs debootstrap (Debian package debootstrap), which could not be installed"; return; }
  for s in $need_boot; do
    mirror_reachable "$s" || { echo "cannot reach the Debian mirror $(debian_mirror) for $s"; return; }
  done
}

# ---- making a root -----------------------------------------------------------------------

# Packages of a root: what scripts/setup.sh installs on the host, and a C library's headers.
root_packages() { echo "$("$project/scripts/setup.sh" --list) libc6-dev python3"; }

# Makes (or finishes) the root of a suite; root_note says what it did and how long it took.
make_root() {
  local suite=$1 root=$otp_dir/$1 log=$otp_dir/logs/$1.root.log pkgs t0=$SECONDS did=reused
  mkdir -p "$otp_dir/logs"
  if [ ! -e "$root/$base_marker" ]; then
    if [ -e "$root" ]; then say "$suite: redoing the half-made root $root"; remove_root "$root"; fi
    say "$suite: debootstrap --variant=minbase $suite $(debian_mirror) (log: $log)"
    mkdir -p "$root"
    : > "$log"
    active_root=$root   # debootstrap mounts /proc itself; undo whatever it leaves behind
    did=made
    run_logged "$log" quiet debootstrap --variant=minbase "$suite" "$root" "$(debian_mirror)" \
      "$(debootstrap_script "$suite")" || die "$suite: debootstrap failed (log: $log)"
    unmount_root "$root"
    touch "$root/$base_marker"
    rm -f "$root/$pkgs_marker"
  fi
  pkgs=$(root_packages)
  if [ "$(cat "$root/$pkgs_marker" 2>/dev/null)" != "$pkgs" ]; then
    say "$suite: installing $pkgs (log: $log)"
    # forky's Release file is past its validity date on the mirror.
    echo 'Acquire::Check-Valid-Until "false";' > "$root/etc/apt/apt.conf.d/99beamprof"
    # A throwaway root: no fsync per file, no documentation (halves dpkg's time).
    printf '%s\n' force-unsafe-io path-exclude=/usr/share/doc/* path-exclude=/usr/share/man/* \
      path-exclude=/usr/share/info/* > "$root/etc/dpkg/dpkg.cfg.d/99beamprof"
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"   # start no services
    chmod 755 "$root/usr/sbin/policy-rc.d"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    active_root=$root
    mount_root "$root"
    # shellcheck disable=SC2086
    run_logged "$log" quiet chroot "$root" "${root_env[@]}" sh -c "dpkg --configure -a && apt-get update -q &&
        apt-get install -y -q --no-install-recommends $pkgs && apt-get clean" \
      || die "$suite: installing the packages failed (log: $log)"
    echo "$pkgs" > "$root/$pkgs_marker"
    [ "$did" = made ] || did="packages installed"
    warm_root "$suite"
  fi
  root_note="$did $(fmt_time $((SECONDS - t0)))"
}

# Builds dialyzer's base PLT of the root's OTP (rebar3 keeps it in the root's
# ~/.cache/rebar3), the longest part of the check step the first time, while the roots
# are made in parallel. Best effort: if it fails, the check step builds it.
warm_root() {
  local suite=$1 root=$otp_dir/$1 log=$otp_dir/logs/$1.root.log
  say "$suite: building dialyzer's base PLT (log: $log)"
  copy_tree "$root"
  run_logged "$log" quiet chroot "$root" "${root_env[@]}" sh -c 'cd /build/beamprof && rebar3 dialyzer' ||
    say "$suite: building the PLT failed; the check step will build it"
}

# Makes the roots of the given suites, all at once (apt and dpkg wait on the network and
# the disk more than on the CPU). Each one's note is kept in logs/<suite>.root.note.
make_roots() {
  local s p rc=0
  for s in "$@"; do
    ( builders=() child="" active_root=""
      set_traps
      make_root "$s"
      echo "$root_note" > "$otp_dir/logs/$s.root.note" ) &
    builders+=($!)
  done
  for p in "${builders[@]}"; do wait "$p" || rc=1; done
  builders=()
  [ "$rc" -eq 0 ] || die "making the roots failed (logs: $otp_dir/logs/*.root.log)"
}

# ---- the run of one release --------------------------------------------------------------

# A copy of the working tree (tracked and untracked files, less what git ignores) at
# <root>/build/beamprof: never the host's objects, libraries or _build.
copy_tree() {
  local dest=$1/build/beamprof
  case "$dest" in "$otp_dir"/?*/build/beamprof) ;; *) die "bad copy destination $dest" ;; esac
  rm -rf --one-file-system -- "$dest"
  mkdir -p "$dest"
  if git -c safe.directory="$project" -C "$project" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -c safe.directory="$project" -C "$project" ls-files -co --exclude-standard -z |
      (cd "$project" && while IFS= read -r -d '' f; do
         if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
       done) |
      tar -C "$project" --null -T - -cf - | tar -C "$dest" -xf -
  else
    tar -C "$project" --exclude='./_build*' --exclude=./deps --exclude='*.o' --exclude='*.d' \
      --exclude='*.so' --exclude=./c_src/asan --exclude=./c_src/test/bin --exclude=./tmp \
      --exclude=./logs --exclude=./.git -cf - . | tar -C "$dest" -xf -
  fi
}


# Case counts a step printed (C units, EUnit, ExUnit, rebar3 ct's totals, the dependency
# check's lines), and for Common Test, per suite from the suite.log of each ct_run
# directory the step made (those not listed in $3): cases ok, failed and skipped, time,
# and what each failing case said.
step_counts() {
  local log=$1 ctlogs=$2 before=$3 d f
  sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E \
    '^[0-9]+ passed, [0-9]+ failed|^All [0-9]+ tests passed|^Failed [0-9]+ tests|[0-9]+ tests?, [0-9]+ failures?|^Result: [0-9]+ passed|Warnings occurred running dialyzer|^dep check: (mix|rebar3|no git|note|FAILED)' \
    | sed 's/^ */      /' || true
  sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^ +[0-9]+\) (test |[a-z_0-9]+:)' | head -40 \
    | sed 's/^ */        failed: /' || true
  [ -d "$ctlogs" ] || return 0
  for d in "$ctlogs"/ct_run.*; do
    [ -d "$d" ] || continue
    grep -qxF "$d" "$before" && continue
    for f in "$d"/*.logs/run.*/suite.log; do
      [ -e "$f" ] && ct_suite_counts "$f"
    done
  done
}

ct_suite_counts() {
  awk '
    function flush() {
      if (r == "") return
      if (r ~ /^ok/) { if (!cfg) ok[s]++ }
      else if (r ~ /^(skipped|auto_skipped)/) {
        if (!cfg) sk[s]++
        notes[s] = notes[s] "        skipped: " s ":" c " (" substr(r, 1, 120) ")\n" }
      else {
        if (!cfg) fl[s]++
        notes[s] = notes[s] "        failed: " s ":" c " (" substr(r, 1, 160) ")\n" }
      r = "" }
    /^=/ { flush(); inres = 0 }
    $1 == "=case" {
      split($2, a, ":"); c = a[2]
      if (a[1] != "ct_framework") s = a[1]     # group config: ct_framework, in the suite s
      cfg = (a[1] == "ct_framework" || c ~ /^(init|end)_per_(suite|group)$/)
      if (!(s in seen)) { seen[s] = 1; order[++n] = s } }
    $1 == "=result" { r = $0; sub(/^=result[ \t]+/, "", r); inres = 1; next }
    $1 == "=elapsed" { t = $2; sub(/s$/, "", t); tm[s] += t }
    inres && !/^=/ { x = $0; gsub(/[ \t]+/, " ", x); r = r x }
    END {
      flush()
      for (i = 1; i <= n; i++) {
        s = order[i]
        printf "      CT %s: %d ok, %d failed, %d skipped (%ds)\n", s, ok[s], fl[s], sk[s], tm[s]
        printf "%s", notes[s] } }' "$1"
}

# What stopped a failed step: its first compile error, else the last lines it printed.
failure_excerpt() {
  local text n
  text=$(sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -v '^make\(\[[0-9]*\]\)\?: \(Entering\|Leaving\)')
  n=$(grep -n -m1 -E '^(===> )?Compiling .* failed|^(===> )?Errors? ' <<< "$text" | cut -d: -f1) || true
  if [ -n "$n" ]; then sed -n "${n},$((n + 5))p" <<< "$text"; else tail -n 6 <<< "$text"; fi |
    cut -c1-160 | sed 's/^/      | /'
}

release_failed=0
root_note=""

# Runs every step of `make test` (less the matrix) for one release in its root, and
# writes its summary. Sets release_failed when a step failed.
run_release() {
  local rel=$1 suite root log_dir src before step t0 rc otp elixir summary status failed=0
  local steps=() elixir_ok=1 out
  suite=$(suite_of "$rel"); rel=$(release_of "$suite")
  root=$otp_dir/$suite
  log_dir=$otp_dir/logs/$rel
  summary=$log_dir/summary.txt
  src=/build/beamprof
  local root_made=reused
  if [ -e "$otp_dir/logs/$suite.root.note" ]; then
    root_made=$(cat "$otp_dir/logs/$suite.root.note"); rm -f "$otp_dir/logs/$suite.root.note"
  fi
  root_complete "$suite" || die "$suite: the root is not complete"
  active_root=$root
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  mount_root "$root" || die "$suite: mounting /proc and /dev in $root failed"
  copy_tree "$root"
  rm -rf "$log_dir"; mkdir -p "$log_dir"
  otp=$(cat "$root"/usr/lib/erlang/releases/*/OTP_VERSION 2>/dev/null | head -1)
  say "OTP $rel: Debian $suite, OTP ${otp:-?}; tree copied to $root$src; logs in $log_dir"

  out=$(in_root "$root" make -s --no-print-directory -C "$src" test-steps) || true
  read -r -a steps <<< "$out"
  [ ${#steps[@]} -gt 0 ] || die "OTP $rel: \`make test-steps\` listed no steps: $out"
  if out=$(in_root "$root" elixir -e 'IO.puts(System.version())' 2>&1) &&
     in_root "$root" mix --version >/dev/null 2>&1; then
    elixir="Elixir $out"
  else
    elixir_ok=0 elixir="Elixir does not run"
    say "OTP $rel: Elixir does not work on OTP $rel here (${out##*$'\n'}): the ExUnit step is skipped, the rest runs"
  fi

  echo "== OTP $rel (Debian $suite: OTP ${otp:-?}, $elixir)" > "$summary"
  printf '   %-12s %-8s %s\n' root ok "$root_made" >> "$summary"
  for step in "${steps[@]}"; do
    if [ "$step" = test-elixir ] && [ "$elixir_ok" -eq 0 ]; then
      printf '   %-12s %-8s %s\n' "$step" SKIPPED "(Elixir does not work on OTP $rel)" >> "$summary"
      continue
    fi
    say "OTP $rel: make $step"
    before=$log_dir/.$step.ct_runs
    ls -d "$root$src"/_build/test/logs/ct_run.* > "$before" 2>/dev/null || true
    t0=$SECONDS rc=0
    run_logged "$log_dir/$step.log" show chroot "$root" "${root_env[@]}" sh -c 'cd "$1" && exec make "$2"' sh "$src" "$step" || rc=$?
    if [ "$rc" -eq 0 ]; then status=ok; else status="FAILED"; failed=$((failed + 1)); fi
    printf '   %-12s %-8s %s\n' "$step" "$status" "$(fmt_time $((SECONDS - t0)))" >> "$summary"
    step_counts "$log_dir/$step.log" "$root$src/_build/test/logs" "$before" >> "$summary"
    [ "$rc" -eq 0 ] || failure_excerpt "$log_dir/$step.log" >> "$summary"
  done
  if [ "$failed" -eq 0 ]; then echo "   OTP $rel: all steps passed" >> "$summary"
  else
    echo "   OTP $rel: $failed step(s) failed (logs: $log_dir; CT logs: $root$src/_build/test/logs)" >> "$summary"
    release_failed=1
  fi
  unmount_root "$root" || die "$suite: could not undo the mounts under $root"
  active_root=""
}

run() {
  local targets=() rel t0 s reason suites=()
  case "${1:-all}" in
    all) targets=("${RELEASES[@]}") ;;
    *) for rel in "$@"; do
         suite_of "$rel" >/dev/null || die "unknown release $rel (known: ${RELEASES[*]} or all)"
         targets+=("$(release_of "$(suite_of "$rel")")")
       done ;;
  esac
  for rel in "${targets[@]}"; do suites+=("$(suite_of "$rel")"); done
  reason=$(cannot_reason "${suites[@]}")
  [ -z "$reason" ] || die "cannot run the OTP matrix here: $reason"
  mkdir -p "$otp_dir"
  exec 9> "$otp_dir/.lock"
  flock -n 9 || die "another matrix run holds $otp_dir/.lock"
  set_traps
  t0=$SECONDS
  mkdir -p "$otp_dir/logs"
  rm -f "$otp_dir"/logs/*.root.note
  make_roots "${suites[@]}"
  for rel in "${targets[@]}"; do
    s=$SECONDS
    run_release "$rel"
    echo "   OTP $rel wall time $(fmt_time $((SECONDS - s)))" >> "$otp_dir/logs/$rel/summary.txt"
  done
  echo
  say "summary ($(fmt_time $((SECONDS - t0))) in all)"
  for rel in "${targets[@]}"; do cat "$otp_dir/logs/$rel/summary.txt"; done
  [ "$release_failed" -eq 0 ]
}

# ---- subcommands ------------------------------------------------------------------------

locked_or_die() {
  [ -e "$otp_dir/.lock" ] || return 0
  exec 9< "$otp_dir/.lock"
  flock -n 9 || die "a matrix run is going on (it holds $otp_dir/.lock): stop it first"
}

cmd=${1:-}; [ $# -gt 0 ] && shift
case "$cmd" in
  run) run "$@" ;;
  test)
    mode=${BEAMPROF_MATRIX:-auto}
    case "$mode" in
      off) exit 0 ;;
      required) run all ;;
      auto)
        suites=(); for rel in "${RELEASES[@]}"; do suites+=("$(suite_of "$rel")"); done
        reason=$(cannot_reason "${suites[@]}")
        if [ -n "$reason" ]; then
          echo "make test: OTP $(releases_text) not tested here ($reason); run them with: sudo make test-otp"
          exit 0
        fi
        run all ;;
      *) die "BEAMPROF_MATRIX is auto, required or off, not $mode" ;;
    esac ;;
  check)
    suites=(); for rel in "${RELEASES[@]}"; do suites+=("$(suite_of "$rel")"); done
    reason=$(cannot_reason "${suites[@]}")
    if [ -n "$reason" ]; then say "cannot run here: $reason"; exit 1; fi
    say "can run here (OTP $(releases_text); mirror $(debian_mirror); roots in $otp_dir)" ;;
  unmount)
    [ "$(uname -s)" = Linux ] || exit 0
    locked_or_die
    if [ -d "$otp_dir" ] && [ -n "$(mounts_under "$otp_dir")" ] && [ "$(id -u)" -ne 0 ]; then
      die "mounts under $otp_dir need root to undo: sudo $0 unmount"
    fi
    unmount_all ;;
  clean)
    [ -d "$otp_dir" ] || exit 0
    locked_or_die
    unmount_all || die "refusing to remove the roots: something is still mounted under $otp_dir"
    while IFS= read -r root; do remove_root "$root"; done < <(all_roots)
    is_mounted_under "$otp_dir" && die "refusing to remove $otp_dir: something is mounted under it"
    rm -rf --one-file-system -- "$otp_dir" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || exit 2 ;;
esac
