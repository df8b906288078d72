# SPDX-License-Identifier: LGPL-2.1-or-later
"""Generated tracks for bench/run.sh, laid out for `segdl-server --root DIR`.

One 3-minute encode (ffmpeg lavfi: a 440 Hz sine with a little pink noise,
stereo 44.1 kHz, AAC 128 kbit/s) is the 3-minute track; the longer tracks are
that encode repeated (`ffmpeg -f concat -c copy`: the same packets, no
second encode). Every track is cut the way the deployed backend cuts
(`ffmpeg -f segment`, packets copied, first segment 15 s, then 30 s, cut at
the frame nearest each time) into two forms:

  m4a  self-contained MP4 segments (`-segment_format ipod`, moov at the end
       of each segment, timestamps reset): the deployed backend's form
  ts   MPEG-TS segments, timestamps running on: a continuous form (their
       concatenation is one stream), the one HLS allows and hlsdemux2 plays

DIR/<form>-<minutes>/seg_N.<ext>. Files are kept between runs (a stamp file
names the parameters they were made with).
"""
import os
import shutil
import subprocess

FORMS = {"m4a": ("ipod", "m4a"), "ts": ("mpegts", "ts")}
# m4a: each file's timestamps start at 0 (a whole file each); ts: the
# timestamps go on across segments, or their concatenation would not be one stream.
RESET = {"m4a": ["-reset_timestamps", "1"], "ts": []}
BASE_MINUTES = 3
STAMP = "v2 sine440+pink0.05 44100 stereo aac 128k cuts 15+30"


def ffmpeg(args, timeout=900):
    r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y"] + args, capture_output=True,
                       text=True, timeout=timeout, check=False)
    if r.returncode != 0:
        raise RuntimeError("ffmpeg " + " ".join(args) + ":\n" + r.stderr)


def cut_times(minutes):
    seconds = minutes * 60
    times = []
    t = 15
    while t < seconds:
        times.append(t)
        t += 30
    return times


def track_id(form, minutes):
    return f"{form}-{minutes}"


def segment_count(minutes):
    return len(cut_times(minutes)) + 1


def make_base(work):
    base = os.path.join(work, "base.m4a")
    if os.path.exists(base):
        return base
    secs = BASE_MINUTES * 60
    ffmpeg(["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={secs}",
            "-f", "lavfi", "-i",
            f"anoisesrc=color=pink:amplitude=0.05:sample_rate=44100:duration={secs}",
            "-filter_complex", "[0][1]amix=inputs=2,aformat=channel_layouts=stereo",
            "-c:a", "aac", "-b:a", "128k", base + ".part.m4a"])
    os.replace(base + ".part.m4a", base)
    return base


def make_whole(work, minutes):
    base = make_base(work)
    if minutes == BASE_MINUTES:
        return base
    if minutes % BASE_MINUTES:
        raise ValueError(f"track lengths are multiples of {BASE_MINUTES} minutes")
    whole = os.path.join(work, f"whole-{minutes}.m4a")
    if os.path.exists(whole):
        return whole
    listing = os.path.join(work, f"concat-{minutes}.txt")
    with open(listing, "w") as f:
        f.write("file 'base.m4a'\n" * (minutes // BASE_MINUTES))
    ffmpeg(["-f", "concat", "-safe", "0", "-i", listing, "-c", "copy", whole + ".part.m4a"])
    os.replace(whole + ".part.m4a", whole)
    return whole


def make_track(media, root, form, minutes):
    """Cuts the track into root/<form>-<minutes>/ unless it is there already."""
    folder = os.path.join(root, track_id(form, minutes))
    stamp = os.path.join(folder, ".stamp")
    if os.path.exists(stamp):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    whole = make_whole(media, minutes)
    fmt, ext = FORMS[form]
    times = ",".join(str(t) for t in cut_times(minutes))
    ffmpeg(["-i", whole, "-map", "0:a", "-c", "copy", "-f", "segment", "-segment_times", times,
            "-segment_format", fmt] + RESET[form] + [os.path.join(folder, "seg_%d." + ext)])
    made = len([n for n in os.listdir(folder) if n.startswith("seg_")])
    if made != segment_count(minutes):
        raise RuntimeError(f"{folder}: {made} segments, expected {segment_count(minutes)}")
    with open(stamp, "w") as f:
        f.write(STAMP + "\n")
    return folder


def prepare(media, tracks):
    """tracks: [(form, minutes)]. Returns root (the --root folder)."""
    os.makedirs(media, exist_ok=True)
    stamp = os.path.join(media, "STAMP")
    if not os.path.exists(stamp) or open(stamp).read().strip() != STAMP:
        shutil.rmtree(media)
        os.makedirs(media)
        with open(stamp, "w") as f:
            f.write(STAMP + "\n")
    root = os.path.join(media, "root")
    os.makedirs(root, exist_ok=True)
    for form, minutes in tracks:
        make_track(media, root, form, minutes)
    return root


def alias_root(root, path, aliases):
    """A second --root at path whose ids are symlinks: {alias_id: track_id}."""
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    for alias, target in aliases.items():
        os.symlink(os.path.join(os.path.abspath(root), target), os.path.join(path, alias))
    return path


def track_bytes(root, form, minutes):
    folder = os.path.join(root, track_id(form, minutes))
    return sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder)
               if n.startswith("seg_"))
