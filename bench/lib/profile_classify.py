#!/usr/bin/env python3
"""Groups a `perf record` of the cvx server by where the time goes.

  perf record -a -e cpu-clock -F 1999 -o perf.data -- \
      python3 bench/lib/one.py bench/.build/cvx a_get_uncached --seconds 6
  python3 bench/lib/profile_classify.py perf.data

Prints the share of the cvx process's samples per group (kernel network
and syscalls, kernel memory, scheduling, guest wasm code, Wasmtime, SQLite,
libuv, JSON, allocation, locks, the rest of cvx). cpu-clock sampling works
where hardware counters are not available (this VM). The groups are by
symbol name, so they are approximate.
"""
import sys,re,subprocess
if len(sys.argv) != 2:
    sys.exit(__doc__)
data=sys.argv[1]
out=subprocess.run(['perf','report','-i',data,'--comm','cvx','--sort','dso,sym','--stdio','--percent-limit','0'],capture_output=True,text=True).stdout
tot={}
alls=0
for l in out.splitlines():
    m=re.match(r'\s+([\d.]+)%\s+(.+?)\s+\[(.)\]\s+(.*)',l)
    if not m: continue
    p=float(m.group(1)); dso=m.group(2); k=m.group(3); sym=m.group(4).strip()
    alls+=p
    if k=='k':
        if re.search(r'pagemap|walk_pgd|pmd|pte|folio|mmap|madvise|page|vm_|tlb|lruvec',sym): c='kernel: memory (pagemap scan, page faults, madvise)'
        elif re.search(r'futex|sched|schedule|switch|wake|rseq|idle|pick_|enqueue|dequeue|update_curr|load_balance',sym): c='kernel: scheduling, futex wake/wait'
        else: c='kernel: network, epoll, syscalls'
    elif dso.startswith('[JIT]'): c='guest wasm code (JIT)'
    elif 'wasmtime' in sym or 'cranelift' in sym or 'regalloc' in sym or 'libwasmtime' in dso: c='wasmtime: instantiate, store, call glue'
    elif 'sqlite' in dso: c='sqlite'
    elif 'libuv' in dso: c='libuv'
    elif re.search(r'^parse_|skip_ws|json|cvx_json|escape|cvx__write_num|fmt_',sym): c='host JSON parse/write'
    elif re.search(r'malloc|calloc|realloc|free|_int_|unlink_chunk|arena|tcache|cvx_malloc|cvx_free',sym): c='allocation'
    elif re.search(r'mutex|lll_lock|pthread_cond|futex',sym): c='locks (user side)'
    elif dso=='libc.so.6': c='libc other (memcpy, memcmp, stdio)'
    else: c='cvx other: '+dso
    tot[c]=tot.get(c,0)+p
print(f"cvx process: {alls:.1f}% of all samples")
for c,p in sorted(tot.items(),key=lambda x:-x[1]):
    print(f"{p/alls*100:5.1f}%  {c}")
