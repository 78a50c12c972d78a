"""What a process costs, read from /proc: for scripts/bench-edge.sh.

  begin PID                      counters now (context switches of every thread, CPU ticks), as JSON
  end PID BEGIN-FILE SECONDS     memory now and the counters' growth since BEGIN-FILE, as JSON
  sample PID WHILE-PID           the largest VmRSS of PID while WHILE-PID runs (every 50 ms, at most 10 min)
  report RAW-DIR IPERF-PORT NAME...  the tables, from the files bench-edge.sh left in RAW-DIR
"""
import json
import os
import re
import sys
import time


def status(pid):
    fields = {}
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()[0] if value.split() else ""
    return fields


def counters(pid):
    """Context switches summed over the threads: each is a wakeup of a thread that then slept again."""
    switches, threads = 0, []
    for tid in os.listdir("/proc/%s/task" % pid):
        try:
            task = status("%s/task/%s" % (pid, tid))
        except OSError:
            continue
        threads.append(task["Name"])
        switches += int(task["voluntary_ctxt_switches"]) + int(task["nonvoluntary_ctxt_switches"])
    with open("/proc/%s/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return {"switches": switches, "threads": threads, "ticks": int(rest[11]) + int(rest[12])}


def kib(value):
    return int(value) if value else 0


def end(pid, begin_file, seconds):
    with open(begin_file) as f:
        before = json.load(f)
    now = counters(pid)
    st = status(pid)
    return {
        "seconds": float(seconds),
        "wakeups": now["switches"] - before["switches"],
        "cpu_ticks": now["ticks"] - before["ticks"],
        "threads": len(now["threads"]),
        "thread_names": sorted(now["threads"]),
        "vm_rss_kib": kib(st.get("VmRSS")),
        "rss_anon_kib": kib(st.get("RssAnon")),
        "rss_file_kib": kib(st.get("RssFile")),
        "vm_size_kib": kib(st.get("VmSize")),
        "pss_kib": rollup(pid).get("Pss", 0),
    }


def rollup(pid):
    """Sums from smaps_rollup in KiB: Pss divides every shared page among the processes mapping it."""
    fields = {}
    try:
        with open("/proc/%s/smaps_rollup" % pid) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    fields[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return fields


def sample(pid, while_pid):
    peak, deadline = 0, time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            peak = max(peak, kib(status(pid).get("VmRSS")))
        except OSError:
            break
        if not os.path.exists("/proc/%s" % while_pid):
            break
        try:  # a zombie (exited, not yet reaped) counts as ended
            with open("/proc/%s/stat" % while_pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except OSError:
            break
        time.sleep(0.05)
    return {"vm_rss_max_kib": peak}


# What a mapping is, by its path; the first pattern that matches names the group.
GROUPS = [
    (r"/libswift(Core|_Concurrency|_StringProcessing|_RegexParser|Glibc|Synchronization|Dispatch|_Volatile|_Builtin_float)?\.so", "Swift runtime (libswiftCore & co)"),
    (r"/libFoundationEssentials\.so", "FoundationEssentials"),
    (r"/libFoundation\.so", "Foundation (corelibs)"),
    (r"/(libFoundationInternationalization|lib_FoundationICU)\.so", "FoundationInternationalization + ICU"),
    (r"/(libdispatch|libBlocksRuntime)\.so", "libdispatch"),
    (r"/(libssl|libcrypto)\.so", "OpenSSL (libssl, libcrypto)"),
    (r"/libuv\.so", "libuv"),
    (r"/(libc|libm|ld-linux-x86-64|libstdc\+\+|libgcc_s|libz|libzstd|libpthread|libdl|librt)[.-]", "C/C++ runtime (libc, libstdc++, ld.so)"),
    (r"^\[heap\]$", "heap (brk)"),
    (r"^\[stack\]$", "main thread stack"),
    (r"^\[(vdso|vvar|vsyscall)\]$", "kernel (vdso)"),
]


def smaps_groups(path, executable):
    """Rss and Private_Dirty in KiB per group. A thread stack is an anonymous mapping right above
    a guard page (---p); other anonymous memory is malloc's arenas and large allocations."""
    groups, mappings, current = {}, [], None
    head = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$")
    with open(path) as f:
        for line in f:
            m = head.match(line)
            if m:
                current = {"start": int(m.group(1), 16), "end": int(m.group(2), 16), "perms": m.group(3), "path": m.group(4).strip(), "rss": 0, "dirty": 0}
                mappings.append(current)
            elif line.startswith("Rss:"):
                current["rss"] = int(line.split()[1])
            elif line.startswith("Private_Dirty:"):
                current["dirty"] = int(line.split()[1])
    for i, mp in enumerate(mappings):
        name = None
        if mp["path"] and os.path.basename(mp["path"]) == os.path.basename(executable):
            name = "the binary itself"
        for pattern, group in GROUPS:
            if name is None and mp["path"] and re.search(pattern, mp["path"]):
                name = group
        if name is None and not mp["path"]:
            guarded = i > 0 and mappings[i - 1]["perms"].startswith("---") and mappings[i - 1]["end"] == mp["start"]
            name = "thread stacks" if guarded and mp["end"] - mp["start"] <= 16 << 20 else "anonymous (malloc arenas, mmap)"
        if name is None:
            name = "other files"
        rss, dirty = groups.get(name, (0, 0))
        groups[name] = (rss + mp["rss"], dirty + mp["dirty"])
    return groups


def mib(k):
    return "%.1f" % (k / 1024.0) if k is not None else "-"


def load(raw, name, what):
    try:
        with open(os.path.join(raw, "%s.%s.json" % (name, what))) as f:
            return json.loads(f.read().strip().splitlines()[-1]) if what != "iperf" else json.load(f)
    except (OSError, ValueError, IndexError):
        return {}


def table(rows, names):
    width = max(len(r[0]) for r in rows)
    cols = [max(len(n), 8) for n in names]
    print("| %s | %s |" % ("figure".ljust(width), " | ".join(n.rjust(c) for n, c in zip(names, cols))))
    print("|%s|%s|" % ("-" * (width + 2), "|".join("-" * (c + 1) + ":" for c in cols)))
    for r in rows:
        print("| %s | %s |" % (r[0].ljust(width), " | ".join(str(v).rjust(c) for v, c in zip(r[1:], cols))))


def report(raw, names):
    idle = {n: load(raw, n, "idle") for n in names}
    busy = {n: load(raw, n, "load") for n in names}
    size = {n: load(raw, n, "size") for n in names}
    gbits = {}
    for n in names:
        try:
            gbits[n] = "%.2f" % (load(raw, n, "iperf")["end"]["sum_received"]["bits_per_second"] / 1e9)
        except (KeyError, TypeError):
            gbits[n] = "failed"
    seconds = next((idle[n]["seconds"] for n in names if idle[n]), 0)
    rows = [
        ("RSS idle, MiB", *[mib(idle[n].get("vm_rss_kib")) for n in names]),
        ("  of it anonymous (heap, stacks), MiB", *[mib(idle[n].get("rss_anon_kib")) for n in names]),
        ("  of it file-backed (code, libraries), MiB", *[mib(idle[n].get("rss_file_kib")) for n in names]),
        ("PSS idle (shared pages divided), MiB", *[mib(idle[n].get("pss_kib")) for n in names]),
        ("RSS with 8 busy streams (max), MiB", *[mib(busy[n].get("vm_rss_max_kib")) for n in names]),
        ("8 streams, Gbit/s (for the record)", *[gbits[n] for n in names]),
        ("wakeups in %.0f s idle (context switches)" % seconds, *[idle[n].get("wakeups", "-") for n in names]),
        ("CPU ticks in %.0f s idle" % seconds, *[idle[n].get("cpu_ticks", "-") for n in names]),
        ("threads", *[idle[n].get("threads", "-") for n in names]),
        ("binary, MB (stripped)", *[("%.1f (%.1f)" % (size[n]["size"] / 1e6, size[n]["stripped"] / 1e6)) if size[n] else "-" for n in names]),
    ]
    table(rows, names)
    print()
    for n in names:
        print("threads of %s: %s" % (n, ", ".join(idle[n].get("thread_names", []))))
    print()
    print("Idle resident memory by mapping, MiB (Rss; private dirty in brackets):")
    agents = [n for n in names if os.path.exists(os.path.join(raw, "%s.smaps" % n))]
    per = {n: smaps_groups(os.path.join(raw, "%s.smaps" % n), size[n].get("binary", "ssh") if size[n] else "ssh") for n in agents}
    order = sorted({g for n in agents for g in per[n]}, key=lambda g: -max(per[n].get(g, (0, 0))[0] for n in agents))
    rows = [(g, *["%s (%s)" % (mib(per[n].get(g, (0, 0))[0]), mib(per[n].get(g, (0, 0))[1])) for n in agents]) for g in order]
    table(rows, agents)


def main():
    cmd = sys.argv[1]
    if cmd == "begin":
        print(json.dumps(counters(sys.argv[2])))
    elif cmd == "end":
        print(json.dumps(end(sys.argv[2], sys.argv[3], sys.argv[4])))
    elif cmd == "sample":
        print(json.dumps(sample(sys.argv[2], sys.argv[3])))
    elif cmd == "report":
        report(sys.argv[2], sys.argv[4:])
    else:
        sys.exit("proc_footprint.py: unknown command %s" % cmd)


if __name__ == "__main__":
    main()
