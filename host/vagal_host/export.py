"""Sessions out to other tools: CSV tables, a WFDB record, Kubios RR text.

Why parts: a session file is one `vagal stream`, but the device's times (t_ms) restart at every
`session start` and at a reset, so a file can hold several device sessions, each with its own clock.
Everything here works on one Part (one device session), with times in seconds from its start.

Why atomic: every output file is first written into a hidden temporary directory inside the target
directory, and only renamed into place when all of them were written, so an error (disk full,
bad input found late) leaves the target as it was.

CSV layout (one file per table, all always written, header row, times `t_s` in seconds from the
session start; see docs/report.md):
  raw.csv        t_s, x                               every raw ADC sample (read_u16 scale)
  beats.csv      time_s, ibi_ms, amplitude, confidence, accepted   vagal replay's beats columns;
                 ibi_ms 0.000 without an interval, accepted 1 when the device's cleaner kept it
  quality.csv    t_s, state                           signal-quality changes
  pacer.csv      t_s, rate_brpm, phase, dir, led      phase 0..1 of the breath, inhale first
  hrv.csv        t_s, hr_bpm, rmssd_ms, sdnn_ms, count
  breaths.csv    t_s, valid, swing_bpm, fit_bpm, phase_deg, hr_bpm, rate_brpm
  coherence.csv  t_s, ratio, peak_hz                  ratio empty when the device had too little data
  assessment.csv t_s, rate_brpm, breaths, swing_bpm, fit_bpm, phase_deg, coherence
Units: bpm is beats per minute (heart rate, swing), brpm breaths per minute (the pacer).
  annotations.csv t_s, source, text                   session/mode/assessment/device/host events
"""

import os
import re
import shutil
import tempfile

from vagal.replay import HEADER as _REPLAY_HEADER

from vagal_host.errors import VagalError
from vagal_host.hrv_report import beat_verdicts
from vagal_host.outputs import check_target
from vagal_host.progress import Progress
from vagal_host.session import other_board, read_session

FORMATS = ("csv", "wfdb", "kubios")
PHASE_FULL = 1 << 24
WFDB_INVALID_32 = -(1 << 31)  # WFDB format 32's "no sample here" value (read back as NaN)
NO_RAW_FS = 1000  # annotation-only WFDB record: ms resolution for beat times
WFDB_ARTEFACT = "|"  # WFDB's "isolated QRS-like artifact": a beat whose interval the cleaner rejected
BEATS_COLUMNS = tuple(_REPLAY_HEADER.strip().split(","))  # time_s, ibi_ms, amplitude, confidence, accepted


class Part:
    """One device session inside a session file: its records in order, times on its own clock."""

    def __init__(self, index, joined=False):
        self.index = index  # 1-based
        self.joined = joined  # the file starts inside a session that was already running
        self.records = []
        self.annotations = []  # (t_ms, source, text)
        self.started = False
        self.stop_ms = None
        self.first_host_t = None
        self.cut_off = False  # the file ends mid-line here (the writer was killed): read up to it
        self.damage = ""  # "3 damaged lines skipped at 4:12-4:13" of the file it came from, or ""

    def of(self, kind):
        return [r for r in self.records if type(r).__name__ == _type_name(kind)]

    def times_ms(self):
        return [r.t_ms for r in self.records if hasattr(r, "t_ms")]

    @property
    def duration_s(self):
        """How long the session ran: to its stop line, else to the last thing heard."""
        if self.stop_ms is not None:
            return self.stop_ms / 1000.0
        ts = self.times_ms()
        return max(ts) / 1000.0 if ts else 0.0

    @property
    def has_data(self):
        return self.started or any(type(r).__name__ in ("Beat", "Raw", "Pacer") for r in self.records)

    def describe(self):
        if self.stop_ms is not None:
            how = "stopped"
        elif self.cut_off:
            how = "the file ends mid-line, as after a crash: read to its last whole line"
        else:
            how = "still running when the recording ended"
        return "session %d (%s, %s)" % (self.index, format_duration(self.duration_s), how)


def _type_name(kind):
    return "SessionState" if kind == "session" else "".join(p.capitalize() for p in kind.split("_"))


def format_duration(s):
    s = int(round(s))
    if s < 60:
        return "%d s" % s
    if s < 3600:
        return "%d min %02d s" % (s // 60, s % 60)
    return "%d h %02d min" % (s // 3600, (s % 3600) // 60)


def split_parts(session):
    """The device sessions in a session file, in order (idle stretches without data are left out)."""
    parts = []
    cur = None
    board = None  # (board id, boot id) of the last hello
    for r in session.records:
        name = type(r).__name__
        new = (name == "SessionState" and r.state == "start") or (name == "Hello" and r.seq == 0)
        if name == "Hello":
            new = new or other_board(board, r)
            board = (r.board, r.boot)
        if cur is None or new:
            cur = Part(len(parts) + 1, joined=not new)
            cur.first_host_t = r.host_t
            parts.append(cur)
        cur.records.append(r)
        if name == "SessionState":
            if r.state == "start":
                cur.started = True
            elif r.state == "stop" and cur.stop_ms is None:
                cur.stop_ms = r.t_ms
    kept = [p for p in parts if p.has_data]
    for i, p in enumerate(kept):
        p.index = i + 1
    for p in kept:
        _annotate(p)
    _host_events(session, kept)
    for p in kept:
        p.annotations.sort(key=lambda a: a[0])
    return kept


def _annotate(part):
    last = 0
    for r in part.records:
        name = type(r).__name__
        t = getattr(r, "t_ms", None)
        if t is not None:
            last = t
        else:
            t = last
        if name == "SessionState":
            part.annotations.append((t, "session", "%s (%s)" % (r.state, r.source)))
        elif name == "Mode":
            part.annotations.append((t, "mode", "%s (%s)" % (r.mode, r.source)))
        elif name == "AssessResult":
            part.annotations.append((t, "assessment", "%s: resonance %s/min, best tested %s/min, date %s"
                                     % (r.state, _bpm(r.rate_mbpm), _bpm(r.chosen_mbpm), r.date)))
        elif name == "Summary":
            part.annotations.append((t, "summary", "mode %s, HR %s bpm, swing %s bpm, coherent %d%%, "
                                     "rate %s/min, %d valid breaths"
                                     % (r.mode, _x10(r.hr_x10), _x10(r.swing_x10), r.coherent_pct,
                                        _bpm(r.rate_mbpm), r.breaths)))
        elif name == "Hello":
            part.annotations.append((t, "device", "hello: firmware %s, %d Hz, board %s" % (r.fw, r.fs, r.board)))
        elif name == "Log" and r.level in ("warn", "error"):
            part.annotations.append((t, "device", "%s: %s" % (r.level, r.text)))


def _host_events(session, parts):
    """Host events (disconnects...) go to the part they happened in, at the device time last heard."""
    if not parts:
        return
    for ev in session.events:
        part = parts[0]
        for p in parts:
            if p.first_host_t is not None and p.first_host_t <= ev.host_t:
                part = p
        before = [r.t_ms for r in part.records if hasattr(r, "t_ms") and r.host_t <= ev.host_t]
        after = [r.t_ms for r in part.records if hasattr(r, "t_ms") and r.host_t > ev.host_t]
        if ev.name in ("connected", "reconnected") and after:
            t = after[0]
        elif before:
            t = before[-1]
        elif after:
            t = after[0]
        else:
            t = 0
        part.annotations.append((t, "host", (ev.name + " " + ev.detail).strip()))


def choose_part(parts, which=None):
    """`which` 1-based, or None for the longest; VagalError when there is nothing to choose."""
    if not parts:
        raise VagalError("no session data in this file (no session start, beats, pacer or raw lines)")
    if which is None:
        return max(parts, key=lambda p: p.duration_s)
    if not 1 <= which <= len(parts):
        raise VagalError("--part %d: this file holds %d session%s" % (which, len(parts),
                                                                      "" if len(parts) == 1 else "s"))
    return parts[which - 1]


def load(path, which=None):
    """(session, parts, chosen part) of a session file; VagalError on a bad or empty file."""
    s = read_session(path)
    parts = split_parts(s)
    if not parts:
        raise VagalError("%s holds no session data (no session start, beats, pacer or raw lines)" % path)
    parts[-1].cut_off = s.truncated
    for p in parts:
        p.damage = s.skipped_text()
    return s, parts, choose_part(parts, which)


def _bpm(mbpm):
    return "%.3g" % (mbpm / 1000.0)


def _x10(v):
    return "%.1f" % (v / 10.0)


def _ts(t_ms):
    return "%.3f" % (t_ms / 1000.0)


def _ms(us):
    return "%.3f" % (us / 1000.0)


def raw_samples(part):
    """[(t_ms float, x)] of every raw sample, in order; and the sample rate (None without raw)."""
    out = []
    fs = None
    for r in part.of("raw"):
        if fs is None:
            fs = r.fs
        step = 1000.0 / r.fs
        for i, x in enumerate(r.x):
            out.append((r.t_ms + i * step, x))
    return out, fs


def tables(part):
    """name -> (header, rows of strings): the CSV layout in this module's docstring."""
    raw, _ = raw_samples(part)
    t = {}
    t["raw"] = (("t_s", "x"), [("%.4f" % (ms / 1000.0), str(x)) for ms, x in raw])
    t["beats"] = (BEATS_COLUMNS,  # vagal replay's beats file, the same columns
                  [(_ts(b.t_ms), _ms(b.ibi_us) if b.ibi_us > 0 else "0.000", str(b.amp), str(b.conf),
                    "1" if ok else "0")
                   for b, ok in zip(part.of("beat"), beat_verdicts(part))])
    t["quality"] = (("t_s", "state"), [(_ts(q.t_ms), q.state) for q in part.of("quality")])
    t["pacer"] = (("t_s", "rate_brpm", "phase", "dir", "led"),
                  [(_ts(p.t_ms), "%.3f" % (p.rate_mbpm / 1000.0), "%.6f" % (p.phase / PHASE_FULL), p.dir,
                    str(p.led)) for p in part.of("pacer")])
    t["hrv"] = (("t_s", "hr_bpm", "rmssd_ms", "sdnn_ms", "count"),
                [(_ts(h.t_ms), _x10(h.hr_x10), _ms(h.rmssd_us), _ms(h.sdnn_us), str(h.count))
                 for h in part.of("hrv")])
    t["breaths"] = (("t_s", "valid", "swing_bpm", "fit_bpm", "phase_deg", "hr_bpm", "rate_brpm"),
                    [(_ts(b.t_ms), str(b.valid), _x10(b.swing_x10), _x10(b.fit_x10), str(b.phase_deg),
                      _x10(b.hr_x10), "%.3f" % (b.rate_mbpm / 1000.0)) for b in part.of("breath")])
    t["coherence"] = (("t_s", "ratio", "peak_hz"),
                      [(_ts(c.t_ms), "%.2f" % (c.ratio_x100 / 100.0) if c.ratio_x100 >= 0 else "",
                        "%.3f" % (c.peak_mhz / 1000.0)) for c in part.of("coherence")])
    t["assessment"] = (("t_s", "rate_brpm", "breaths", "swing_bpm", "fit_bpm", "phase_deg", "coherence"),
                       [(_ts(a.t_ms), "%.3f" % (a.rate_mbpm / 1000.0), str(a.breaths), _x10(a.swing_x10),
                         _x10(a.fit_x10), str(a.phase_deg),
                         "%.2f" % (a.coherence_x100 / 100.0) if a.coherence_x100 >= 0 else "")
                        for a in part.of("assess_step")])
    t["annotations"] = (("t_s", "source", "text"),
                        [(_ts(ms), src, text) for ms, src, text in part.annotations])
    return t


class AtomicDir:
    """Files written into a hidden temporary directory in `target`, renamed into it only on success.

    On any error the temporaries are removed, and `target` too if this created it. Before anything
    is renamed, every final path is checked (vagal_host.outputs.check_target): an input of the
    command, or an existing file that is not an earlier output of the same kind (without `force`),
    stops it with nothing replaced. `kind` is the kind of files written without path(name, kind).
    """

    def __init__(self, target, inputs=(), force=False, kind=None, option="--out"):
        self.target = target
        self.created = False
        self.tmp = None
        self.names = []
        self.inputs = inputs
        self.force = force
        self.kind = kind
        self.kinds = {}
        self.option = option

    def __enter__(self):
        try:
            if not os.path.isdir(self.target):
                if os.path.exists(self.target):
                    raise VagalError("output %s exists and is not a directory" % self.target)
                os.makedirs(self.target)
                self.created = True
            self.tmp = tempfile.mkdtemp(prefix=".vagal-tmp-", dir=self.target)
        except OSError as e:
            self._cleanup()
            raise VagalError("cannot write to %s: %s" % (self.target, e.strerror or e)) from None
        return self

    def path(self, name, kind=None):
        self.names.append(name)
        if kind is not None:
            self.kinds[name] = kind
        return os.path.join(self.tmp, name)

    def _check(self, names):
        for name in names:
            check_target(os.path.join(self.target, name), self.kinds.get(name, self.kind), self.inputs,
                         self.force, self.option)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                names = os.listdir(self.tmp)
                try:
                    self._check(names)
                except VagalError:
                    self._cleanup()
                    raise
                for name in names:
                    os.replace(os.path.join(self.tmp, name), os.path.join(self.target, name))
                os.rmdir(self.tmp)
                return False
            except OSError as e:
                self._cleanup()
                raise VagalError("cannot write to %s: %s" % (self.target, e.strerror or e)) from None
        self._cleanup()
        if isinstance(exc, OSError):
            raise VagalError("cannot write to %s: %s" % (self.target, exc.strerror or exc)) from None
        return False

    def _cleanup(self):
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.created:
            try:
                os.rmdir(self.target)
            except OSError:
                pass


def record_name(session_path, part, nparts):
    """A WFDB-safe base name from the session file's name (+ _sN when the file holds several)."""
    stem = os.path.splitext(os.path.basename(session_path))[0]
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", stem) or "session"
    return stem + ("_s%d" % part.index if nparts > 1 else "")


def write_csv(part, target_dir, base, progress, inputs=(), force=False):
    tabs = tables(part)
    written = []
    with AtomicDir(target_dir, inputs, force) as out:
        for name, (header, rows) in tabs.items():
            progress.stage("writing %s.csv" % name)
            fname = "%s_%s.csv" % (base, name)
            with open(out.path(fname, "csv:" + ",".join(header)), "w", newline="") as f:
                f.write(",".join(header) + "\n")
                for i, row in enumerate(rows):
                    f.write(",".join(_csv_field(v) for v in row) + "\n")
                    if i % 20000 == 19999:
                        progress.advance(20000)
            written.append(fname)
    return written


def _csv_field(v):
    if any(c in v for c in ',"\n'):
        return '"' + v.replace('"', '""') + '"'
    return v


def wfdb_layout(part):
    """(fs, origin_ms, signal or None): the sample grid a WFDB record of this part uses.

    Sample 0 is at origin_ms (0, or the earliest time in the part when a beat came before the
    session start line); raw samples sit at round((t - origin) * fs / 1000), gaps are invalid.
    """
    import numpy as np

    raw, fs = raw_samples(part)
    times = part.times_ms()
    origin = min([0] + [int(t) for t in times] + [int(t) for t, _ in raw[:1]])
    if fs is None:
        return NO_RAW_FS, origin, None
    idx = [int(round((t - origin) * fs / 1000.0)) for t, _ in raw]
    sig = np.full(max(idx) + 1, WFDB_INVALID_32, dtype=np.int64)
    for i, (_, x) in zip(idx, raw):
        sig[i] = x
    return fs, origin, sig


def write_wfdb(part, target_dir, base, session_path, progress, force=False):
    """Record `base`: the raw PPG as signal PPG (format 32, gaps invalid) when raw was streamed, else
    a header without signals at 1000 Hz; beats in `base.beat` (N, aux ibi/amp/conf), quality changes,
    pacer turns and annotations in `base.event` ('=' annotations with the text as aux note: wfdb's
    reader drops comment annotations at sample 0, taking them for its own header notes)."""
    import numpy as np
    import wfdb

    progress.stage("laying out the signal")
    fs, origin, sig = wfdb_layout(part)

    def sample(t_ms):
        return int(round((t_ms - origin) * fs / 1000.0))

    beats = part.of("beat")
    ev = [(sample(q.t_ms), "quality %s" % q.state) for q in part.of("quality")]
    prev_dir = None
    for p in part.of("pacer"):
        if p.dir != prev_dir:
            ev.append((sample(p.t_ms), "%s %s/min" % ("inhale" if p.dir == "in" else "exhale",
                                                      _bpm(p.rate_mbpm))))
            prev_dir = p.dir
    ev += [(sample(t), "%s: %s" % (src, text)) for t, src, text in part.annotations]
    ev.sort(key=lambda e: e[0])
    last = max([len(sig) if sig is not None else 0] + [s + 1 for s, _ in ev]
               + [sample(b.t_ms) + 1 for b in beats])
    comments = ["vagal session %s part %d" % (os.path.basename(session_path), part.index),
                "origin_ms %d (sample 0 is this many ms from the session start)" % origin]
    with AtomicDir(target_dir, (session_path,), force, kind="wfdb") as out:
        progress.stage("writing the WFDB record")
        if sig is not None:
            wfdb.wrsamp(base, fs=fs, units=["adu"], sig_name=["PPG"], d_signal=sig.reshape(-1, 1),
                        fmt=["32"], adc_gain=[1.0], baseline=[0], comments=comments, write_dir=out.tmp)
        else:
            with open(out.path(base + ".hea"), "w") as f:  # wfdb-python will not write n_sig 0
                f.write("%s 0 %d %d\n" % (base, fs, last))
                f.write("".join("# %s\n" % c for c in comments))
        progress.stage("writing the annotations")
        if beats:
            verdicts = beat_verdicts(part)  # a beat whose interval the device's cleaner rejected is an artefact
            wfdb.wrann(base, "beat", np.array([sample(b.t_ms) for b in beats]),
                       symbol=[WFDB_ARTEFACT if ok is False else "N" for ok in verdicts],
                       aux_note=["ibi_us=%d amp=%d conf=%d" % (b.ibi_us, b.amp, b.conf) for b in beats],
                       fs=fs, write_dir=out.tmp)
        if ev:
            wfdb.wrann(base, "event", np.array([s for s, _ in ev]), symbol=["="] * len(ev),
                       aux_note=[_wfdb_text(t) for _, t in ev], fs=fs, write_dir=out.tmp)
        written = sorted(os.listdir(out.tmp))
    return written


def _wfdb_text(text):
    return text.encode("ascii", "replace").decode()[:250]


def kubios_intervals(part):
    """RR intervals (us) whose running sum from the first beat gives every later beat's time.

    Each is the device's own interval, except where it does not join this beat to the one before in
    the file: the device had none (the first beat after a lost pulse) or beats between were lost on
    the link. There it is the time since the beat before, less what the sum already drifted: one long
    interval that Kubios' artefact correction marks, so the file's time axis stays on the session's
    (left out, the intervals summed short of the beats' span by the gaps' length)."""
    beats = part.of("beat")
    out = []
    if not beats:
        return out
    t0_us = beats[0].t_ms * 1000
    total = 0  # us since the first beat, as the file's reader will sum it
    prev_ms = beats[0].t_ms
    for b in beats[1:]:
        span_us = (b.t_ms - prev_ms) * 1000
        prev_ms = b.t_ms
        if b.ibi_us > 0 and abs(b.ibi_us - span_us) <= 1500:  # times are whole ms: 1 ms each end
            ibi = b.ibi_us
        else:
            ibi = b.t_ms * 1000 - t0_us - total
        if ibi <= 0:
            continue  # two beats on one millisecond: nothing a reader could place
        out.append(ibi)
        total += ibi
    return out


def write_kubios(part, target_file, progress, inputs=(), force=False):
    """One RR interval per line in milliseconds (Kubios reads s or ms, one column, and tells them
    apart itself), kubios_intervals: the first beat has none; a gap is one long interval."""
    ibis = kubios_intervals(part)
    if not ibis:
        raise VagalError("no beat intervals in %s: nothing to export for Kubios" % part.describe())
    target_dir = os.path.dirname(os.path.abspath(target_file))
    name = os.path.basename(target_file)
    progress.stage("writing %s" % name)
    check_target(target_file, "kubios", inputs, force)  # before any work; checked again at the rename
    with AtomicDir(target_dir, inputs, force) as out:
        with open(out.path(name, "kubios"), "w") as f:
            for us in ibis:
                f.write(_ms(us) + "\n")
    return [name]


def export(session_path, fmt, out=None, which=None, quiet=False, force=False):
    """Export one part of a session file; -> (chosen part, parts, directory, written file names).

    Never over the session file itself, nor over a file that is not an earlier export of the same
    kind unless `force` (vagal_host.outputs)."""
    if fmt not in FORMATS:
        raise VagalError("unknown format %r (use %s)" % (fmt, ", ".join(FORMATS)))
    inputs = (session_path,)
    with Progress("reading %s" % os.path.basename(session_path), quiet=quiet) as progress:
        _, parts, part = load(session_path, which)
        base = record_name(session_path, part, len(parts))
        if fmt == "kubios":
            if out is None:
                target = os.path.join(os.path.dirname(session_path), base + "_rr.txt")
            elif os.path.isdir(out) or out.endswith(os.sep):
                target = os.path.join(out, base + "_rr.txt")
            elif not os.path.splitext(out)[1]:
                target = out + ".txt"  # Kubios lists .txt files; the printed path says where it went
            else:
                target = out
            written = write_kubios(part, target, progress, inputs, force)
            return part, parts, os.path.dirname(target) or ".", written
        target_dir = out if out is not None else (os.path.dirname(session_path) or ".")
        if out is not None and not os.path.isdir(out) and os.path.splitext(out.rstrip(os.sep))[1].lower() in (
                ".txt", ".csv", ".dat", ".hea", ".tsv", ".json", ".vagal"):
            raise VagalError("--out %s looks like a file, but %s writes several files: give a folder "
                             "(created if missing)" % (out, fmt))
        if fmt == "csv":
            return part, parts, target_dir, write_csv(part, target_dir, base, progress, inputs, force)
        return part, parts, target_dir, write_wfdb(part, target_dir, base, session_path, progress, force)
