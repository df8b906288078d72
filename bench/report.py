# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tables, machine description, docs/benchmarks.md section and plot for bench/run.sh."""
import os
import platform
import re
import statistics
import subprocess
import tempfile
import time

import media

BEGIN = "<!-- BEGIN bench/run.sh: generated, everything up to END is rewritten by each run -->"
END = "<!-- END bench/run.sh -->"
GST_FLOOR = ("first", 3, "ts", "souphttpsrc ! decodebin: segment 0")
TITLES = {
    "first": "First decoded audio, 3-minute track",
    "whole": "Whole track into a file",
    "many": "16 tracks at once in one process (3-minute track, into 16 files)",
    "progressive": "Progressive backend: a segment every {every:g} s (3-minute track)",
}


def out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                              check=False).stdout.strip()
    except OSError:
        return ""


def machine(load, started, ended, a, cmds):
    model = re.search(r"Model name:\s*(.*)", out(["lscpu"]))
    mem = re.search(r"Mem:\s+(\S+)", out(["free", "-h"]))
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "minutes": (ended - started) / 60.0,
        "load": load,
        "cpus": out(["nproc"]),
        "model": model.group(1) if model else "?",
        "mem": mem.group(1) if mem else "?",
        "kernel": platform.release(),
        "gst": out(["gst-launch-1.0", "--version"]).splitlines()[1:2],
        "ffmpeg": (out(["ffmpeg", "-version"]).splitlines() or ["?"])[0].split(" Copyright")[0],
        "curl": (out(["curl", "--version"]).splitlines() or ["?"])[0].split(" (")[0],
        "commit": out(["git", "-C", os.path.dirname(os.path.dirname(__file__)), "describe",
                       "--always", "--dirty"]),
        "cmds": cmds,
    }


def floor_key(key):
    group, minutes, form, name = key
    if group == "first":
        return GST_FLOOR
    if group == "whole":
        k = re.search(r"max-concurrent=(\d+)", name)
        return (group, minutes, form, f"curl: {k.group(1) if k else 3} parallel (floor)")
    if group == "many":
        return (group, minutes, form, "curl: 48 parallel (floor)")
    return (group, minutes, form, "floor: latency + last segment")


def stats(ms, field="value"):
    vals = [m[field] for m in ms if m.get(field) is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def fmt_row(key, ms, results, scale, digits):
    s = stats(ms)
    if s is None:
        return None, "FAILED", "-", "-"
    fk = floor_key(key)
    fs = stats(results.get(fk, []))
    ratio = "1.00 (floor)" if fk == key else ("%.2f" % (s[0] / fs[0]) if fs else "-")
    med = f"{s[0] * scale:.{digits}f}"
    rng = f"{s[1] * scale:.{digits}f}–{s[2] * scale:.{digits}f}"
    return s, med, rng, ratio


def table(results, group):
    keys = [k for k in results if k[0] == group]
    if not keys:
        return []
    ms_unit = group == "first"
    unit = "ms" if ms_unit else "s"
    head = f"| track | form | contender | median ({unit}) | min–max ({unit}) | × floor | runs |"
    extra = group in ("whole", "many")
    if extra:
        head += " CPU user+sys (s) | peak RSS (MiB) |"
    lines = [head, "|" + "---|" * head.count(" |")]
    for key in keys:
        ms = results[key]
        _, med, rng, ratio = fmt_row(key, ms, results, 1000 if ms_unit else 1, 0 if ms_unit else 2)
        row = f"| {key[1]} min | {key[2]} | {key[3]} | {med} | {rng} | {ratio} | {len(ms)} |"
        if extra:
            cpu, rss = stats(ms, "cpu"), stats(ms, "rss")
            row += f" {cpu[0]:.2f} |" if cpu else " - |"
            row += f" {rss[0]:.0f} |" if rss else " - |"
        lines.append(row)
    return lines


def med(results, key, field="value"):
    st = stats(results.get(key, []), field)
    return st[0] if st else None


def verdict(ok):
    return "not measured" if ok is None else ("yes" if ok else "**no**")


def target_first(results):
    rows = []
    floor = med(results, GST_FLOOR)
    hls = med(results, ("first", 3, "ts", "hlsdemux2 (uridecodebin3)"))
    for form in media.FORMS:
        v = med(results, ("first", 3, form, "segdlsrc ! decodebin"))
        if v is None or floor is None:
            continue
        ok = v <= 1.25 * floor and (hls is None or v < hls)
        hls_txt = f", hlsdemux2 {hls * 1000:.0f} ms" if hls else ""
        rows.append(f"| first audio ≤ 1.25 × floor and below hlsdemux2 ({form}) | "
                    f"{v * 1000:.0f} ms = {v / floor:.2f} × floor{hls_txt} | {verdict(ok)} |")
    return rows


def target_whole(results):
    minutes = max((k[1] for k in results if k[0] == "whole" and k[3].startswith("curl")),
                  default=None)
    rows = []
    for key in [k for k in results if k[0] == "whole" and k[1] == minutes]:
        if not key[3].startswith("segdlsrc max-concurrent"):
            continue
        v, fl = med(results, key), med(results, floor_key(key))
        if v is None or fl is None:
            continue
        others = []
        for name in ("old tools: 3 at a time + ffmpeg concat", "hlsdemux2 (urisourcebin) ! mp4mux"):
            o = med(results, ("whole", minutes, key[2], name))
            if o is not None:
                others.append((name.split(":")[0].split(" (")[0], o))
        ok = v <= 1.05 * fl and all(v < o for _, o in others)
        txt = ", ".join(f"{n} {o:.2f} s" for n, o in others)
        rows.append(f"| {minutes}-minute track within 5 % of the floor, faster than the old way "
                    f"and hlsdemux2 ({key[2]}, {key[3].split(' ')[1]}) | {v:.2f} s = "
                    f"{v / fl:.2f} × floor{', ' + txt if txt else ''} | {verdict(ok)} |")
        old = med(results, ("whole", minutes, key[2], "old tools: 3 at a time + ffmpeg concat"),
                  "cpu")
        cpu = med(results, key, "cpu")
        if old is not None and cpu is not None and key[3].endswith("=3 ! mp4mux"):
            rows.append(f"| CPU of the {minutes}-minute job ≤ the old way's ({key[2]}) | "
                        f"{cpu:.2f} s, old way {old:.2f} s | {verdict(cpu <= old)} |")
    return rows


def targets(results):
    rows = target_first(results) + target_whole(results)
    for form in media.FORMS:
        key = ("progressive", 3, form, "segdlsrc ! mp4mux")
        v, fl = med(results, key), med(results, floor_key(key))
        if v is not None and fl is not None:
            rows.append(f"| progressive: done ≤ 1.2 × floor after the last segment ({form}) | "
                        f"{v:.2f} s = {v / fl:.2f} × floor | {verdict(v <= 1.2 * fl)} |")
    rss = {k[1]: med(results, k, "rss") for k in results
           if k[0] == "whole" and k[2] == "m4a" and k[3] == "segdlsrc ! fakesink"}
    if 3 in rss and len(rss) > 1:
        longest = max(rss)
        ok = rss[longest] <= 1.1 * rss[3] and rss[longest] < 40
        rows.append(f"| peak RSS for {longest} min within 10 % of 3 min, under 40 MB (m4a) | "
                    f"{rss[longest]:.1f} MiB vs {rss[3]:.1f} MiB | {verdict(ok)} |")
    if not rows:
        return []
    return ["| target (issue 11) | measured (medians) | met |", "|---|---|---|"] + rows


def command_lines(results, build, scratch_hint="$TMP"):
    seen, lines = set(), []
    for key, ms in results.items():
        if not ms or "cmd" not in ms[0] or key[3] in seen:
            continue
        seen.add(key[3])
        cmd = ms[0]["cmd"].replace(build, "BUILD").replace(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
                                   + "/", "")
        cmd = re.sub(r"/tmp/segdl-bench-[^/ ]+(/tmp[^/ ]+)?", scratch_hint, cmd)
        cmd = re.sub(r"http://127\.0\.0\.1:\d+", "$SERVER", cmd)
        lines.append(f"- {key[3]}: `{cmd}`")
    return lines


def tracks_table(root, results):
    used = sorted({(k[2], k[1]) for k in results})
    lines = ["| track | form | segments | bytes |", "|---|---|---|---|"]
    for form, minutes in used:
        if os.path.isdir(os.path.join(root, media.track_id(form, minutes))):
            lines.append(f"| {minutes} min | {form} | {media.segment_count(minutes)} | "
                         f"{media.track_bytes(root, form, minutes)} |")
    return lines


def server_cmd(cmd, a):
    return " ".join([os.path.basename(cmd[0])] + cmd[1:]).replace(a.build, "BUILD")


def section(results, info, a, root):
    load = info["load"]
    run = "bench/run.sh --quick" if a.quick else "bench/run.sh"
    L = [BEGIN, "", "## Side by side with the alternatives — `bench/run.sh`", "",
         f"Generated by `{run}` on {info['date']} ({info['minutes']:.1f} minutes), commit "
         f"`{info['commit']}`. **Load average at start: {load[0]:.2f}, {load[1]:.2f}, "
         f"{load[2]:.2f}**" + (" — ABOVE 1: the machine was busy with other work, so these "
                               "numbers are distorted and only show that the benchmark runs; "
                               "rerun on a quiet machine." if load[0] > 1 else "."), "",
         f"Machine: {info['cpus']} CPUs ({info['model']}), {info['mem']} memory, Linux "
         f"{info['kernel']}; {' '.join(info['gst'])}; {info['ffmpeg']}; {info['curl']}.", "",
         f"Served on 127.0.0.1 by `{server_cmd(info['cmds'][0], a)}` (every response waits {a.latency_ms} ms, every "
         f"connection is throttled to {a.bandwidth_kbps} kbit/s); the progressive case by a "
         f"second server with `--reveal-every {a.reveal_every:g}` (segment k ready k × "
         f"{a.reveal_every:g} s after the first request for its id, which bench/run.sh makes "
         "itself just before starting the contender). Tracks (bench/media.py): one AAC "
         "encode, 128 kbit/s stereo 44.1 kHz, cut by `ffmpeg -f segment` (15 s, then 30 s):",
         ""]
    L += tracks_table(root, results)
    L += ["", "Contenders are run in turn (one run of each, then the next run). Times are "
          "wall-clock: first audio in-process from PLAYING to the first decoded buffer at the "
          "sink (bench/gstrun.py), curl's own time to first byte; whole-track times around the "
          "whole command (process start included); CPU and peak RSS from GNU `time -v`. "
          "Floors: first audio — souphttpsrc reading the TS segment 0 into decodebin; whole "
          "track — curl fetching every segment with the same number of connections (3 for "
          "contenders without the setting); progressive — curl fetching the last segment.",
          "", "![first audio and whole-track time per contender](benchmarks-run.png)"]
    lines = targets(results)
    if lines:
        L += ["", "### Targets", "", "Computed by bench/report.py from the tables below"
              + (" (distorted: see the load average above)." if load[0] > 1 else ".")
              + " Targets this run did not measure (e.g. the 60-minute and 3-hour tracks "
              "with --quick) are left out.", ""] + lines
    for group in ("first", "whole", "many", "progressive"):
        lines = table(results, group)
        if lines:
            L += ["", "### " + TITLES[group].format(every=a.reveal_every), ""] + lines
    L += ["", "### Commands", "", "`$SERVER` is the server's URL, `$TMP` a scratch folder, "
          "`URLS` a curl config file with one `url`/`output` pair per segment; GStreamer "
          "commands run with `GST_PLUGIN_PATH=BUILD/plugins/segdl "
          "SEGDL_MODULE_DIR=BUILD/gst/segdl`."]
    L += [""] + command_lines(results, a.build) + ["", END]
    return "\n".join(L) + "\n"


def write_doc(path, text):
    """Replaces the generated section of path (appends it when absent)."""
    with open(path) as f:
        doc = f.read()
    b, e = doc.find(BEGIN), doc.find(END)
    if b >= 0 and e > b:
        doc = doc[:b] + text + doc[e + len(END):].lstrip("\n")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    tmp = path + ".part"
    with open(tmp, "w") as f:
        f.write(doc)
    os.replace(tmp, path)


def plot_data(results, group, minutes, path, scale):
    rows = 0
    with open(path, "w") as f:
        for key, ms in results.items():
            s = stats(ms)
            if key[0] != group or key[1] != minutes or s is None:
                continue
            label = f"{key[2]}: {key[3]}".replace('"', "'")
            f.write(f'"{label}" {s[0] * scale:.4f} {s[1] * scale:.4f} {s[2] * scale:.4f}\n')
            rows += 1
    return rows


def plot(results, info, png):
    longest = max((k[1] for k in results if k[0] == "whole" and k[3].startswith("curl")),
                  default=3)
    with tempfile.TemporaryDirectory() as d:
        first, whole = os.path.join(d, "first.dat"), os.path.join(d, "whole.dat")
        n1 = plot_data(results, "first", 3, first, 1000)
        n2 = plot_data(results, "whole", longest, whole, 1)
        script = f"""
set terminal pngcairo size 1600,{700 + 10 * max(n1, n2)} font "sans,10"
set output "{png}"
set multiplot layout 1,2 title "segdl bench/run.sh, {info['date']}, load average at start {info['load'][0]:.2f}{' (busy machine: distorted)' if info['load'][0] > 1 else ''}"
set style fill solid 0.6 border -1
set boxwidth 0.7
set xtics rotate by -50 left noenhanced
set grid ytics
set yrange [0:*]
set bmargin 22
unset key
set title "First decoded audio, 3-minute track (ms, median; bars: min-max)"
plot "{first}" using 0:2:xtic(1) with boxes lc rgb "#4477aa", "" using 0:2:3:4 with yerrorbars lc rgb "black" pt 0
set title "Whole {longest}-minute track (s, median; bars: min-max)"
plot "{whole}" using 0:2:xtic(1) with boxes lc rgb "#cc6677", "" using 0:2:3:4 with yerrorbars lc rgb "black" pt 0
unset multiplot
"""
        gp = os.path.join(d, "plot.gp")
        with open(gp, "w") as f:
            f.write(script)
        subprocess.run(["gnuplot", gp], check=True, timeout=120)
