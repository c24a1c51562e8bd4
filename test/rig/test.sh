#!/usr/bin/env bash
# The test command after prepare.sh and the build: unit tests, then the integration files in two
# streams at once — the files below against a libvirtd of their own (isolated.sh), every other
# file against the host's. Each stream runs its files one at a time (vitest.config.ts). The split
# balances the streams' wall time (docs/performance.md has the measured times); a new file joins
# the host's stream unless it is listed here. With arguments, runs `vitest run ARGS` as it is.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [[ $# -gt 0 ]]; then exec npx vitest run "$@"; fi

isolated_files=(
  test/ops/faults.int.test.ts
  test/ops/consolidate.int.test.ts
  test/ops/backup.int.test.ts
  test/ops/mount.int.test.ts
  test/ops/restore-hostile.int.test.ts
  test/ops/vmfiles.int.test.ts
  test/ops/block-disks.int.test.ts
)

npx vitest run --project unit || exit 1

log=$(mktemp /var/tmp/unifi-backup-stream-XXXXXX.log)
bash test/rig/isolated.sh npx vitest run --project integration "${isolated_files[@]}" >"$log" 2>&1 &
isolated=$!

excludes=()
for file in "${isolated_files[@]}"; do excludes+=(--exclude "$file"); done
npx vitest run --project integration "${excludes[@]}"
host_status=$?

wait "$isolated"
isolated_status=$?
echo "=== integration files against a libvirtd of their own (${isolated_files[*]}) ==="
cat "$log"
rm -f -- "$log"
echo "=== host stream: exit $host_status; isolated stream: exit $isolated_status ==="
((host_status == 0 && isolated_status == 0))
