#!/bin/sh
# cvx's one change to Wasmtime's own sources, applied by ./setup to a copy of
# the wasmtime crate (DIR) that the build then uses through [patch.crates-io].
#
# When a pooled instance is released, Wasmtime asks Linux (PAGEMAP_SCAN)
# which pages of its linear memory the call wrote, copies the memory image
# back over those and decommits (madvise) everything after them. The scan
# reports at most MAX_REGIONS runs of written pages; past the 32nd it stops,
# and the rest of memory is decommitted even if little of it was written.
# A JavaScript guest writes a few pages here and there all over its 2 MiB
# heap (reference counts), so every call ended with a madvise of the heap's
# top 340 KiB and began with ~15 page faults to bring it back: an empty
# TypeScript query 125 -> 50 us p50 with 1024 (docs/decisions.md).
set -eu
f="$1/src/runtime/vm/sys/unix/pagemap.rs"
if ! grep -q 'const MAX_REGIONS: usize = 32;' "$f"; then
  echo "deps/wasmtime/patch.sh: $f is not what this patch expects; update the patch for this Wasmtime" >&2
  exit 1
fi
sed -i 's/const MAX_REGIONS: usize = 32;/const MAX_REGIONS: usize = 1024;/' "$f"
grep -q 'const MAX_REGIONS: usize = 1024;' "$f"
