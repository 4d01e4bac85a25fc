#!/usr/bin/env python3
"""Where a whole run's CPU goes, by command, from the kernel's BSD process accounting (acct(2), v3
records; root): `suite-cpu.py on FILE`, run the suite, `suite-cpu.py off`, `suite-cpu.py report FILE`.
Each ended process with its own CPU; node processes under 60 s (opsdeck CLI calls, mostly) apart."""
import ctypes, struct, sys, collections
def comp(v):  # comp_t: 13-bit mantissa, 3-bit base-8 exponent
    return (v & 0x1fff) << (((v >> 13) & 7) * 3)
if sys.argv[1] == 'on':
    open(sys.argv[2], 'ab').close()
    r = ctypes.CDLL(None, use_errno=True).acct(sys.argv[2].encode())
    print('acct on' if r == 0 else f'acct failed errno {ctypes.get_errno()}')
elif sys.argv[1] == 'off':
    ctypes.CDLL(None).acct(None); print('acct off')
else:
    data = open(sys.argv[2], 'rb').read()
    cpu = collections.Counter(); n = collections.Counter(); faults = collections.Counter()
    tot = 0.0
    for off in range(0, len(data) - 63, 64):
        rec = data[off:off+64]
        flag, ver, tty, exitc, uid, gid, pid, ppid, btime, etime = struct.unpack('<BBHIIIIIIf', rec[:32])
        if ver != 3: continue
        ut, st, mem, io, rw, minflt, majflt, swaps = struct.unpack('<8H', rec[32:48])
        comm = rec[48:64].split(b'\0')[0].decode(errors='replace')
        c = (comp(ut) + comp(st)) / 100.0
        if comm == 'node': comm = 'node(<60s)' if etime < 6000 else 'node(long)'
        cpu[comm] += c; n[comm] += 1; faults[comm] += comp(minflt); tot += c
    print(f'total CPU {tot:.0f} s over {sum(n.values())} processes')
    for k, v in cpu.most_common(25):
        print(f'{v:8.1f} s {100*v/tot:5.1f}%  {n[k]:7d} procs  {v/n[k]*1000:7.1f} ms each  {faults[k]/n[k]:8.0f} faults each  {k}')
