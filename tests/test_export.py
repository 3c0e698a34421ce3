"""vagal export: CSV tables, WFDB record and Kubios RR text read back equal to what the device sent;
bad input and failed writes leave nothing behind."""

import math
import os
import subprocess
import sys

import pytest

from vagal import protocol
from vagal_host import export as export_mod
from vagal_host.cli import main
from vagal_host.session import SessionWriter

FS = 250
CSV_HEADERS = {
    "raw": "t_s,x",
    "beats": "time_s,ibi_ms,amplitude,confidence,accepted",  # vagal replay's beats columns
    "quality": "t_s,state",
    "pacer": "t_s,rate_brpm,phase,dir,led",
    "hrv": "t_s,hr_bpm,rmssd_ms,sdnn_ms,count",
    "breaths": "t_s,valid,swing_bpm,fit_bpm,phase_deg,hr_bpm,rate_brpm",
    "coherence": "t_s,ratio,peak_hz",
    "assessment": "t_s,rate_brpm,breaths,swing_bpm,fit_bpm,phase_deg,coherence",
    "annotations": "t_s,source,text",
}


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Built:
    """What a synthetic session file holds, per part, as the device sent it (the test's truth)."""

    def __init__(self):
        self.parts = []


def build_session(path, parts=((70, "pace"),), raw=True, extras=True, gap=None, seed=3):
    """A session file as `vagal stream` writes it, from a made-up device.

    parts: (seconds, mode) per device session (each starts with `session start`); raw: raw lines at
    250 Hz; extras: breath/coherence/summary (and assess_step/assess_result in `assess` mode) lines;
    gap: (from_s, to_s) in the first part during which the link was down (lines lost, host events).
    """
    import random

    rnd = random.Random(seed)
    clock = FakeClock()
    w = SessionWriter(str(path), "/dev/ttyACM0", "0.1.0", extra={"source": "test"}, clock=clock)
    w.event("connected", "/dev/ttyACM0")
    built = Built()
    seq = [0]

    def send(kind, *values, lost=False):
        line = protocol.encode(kind, seq[0], *values).rstrip("\n").encode()
        seq[0] = (seq[0] + 1) % 65536
        if not lost:
            w.received(line)

    send("hello", "0.1.0", 1, FS, "pico", "-")
    for index, (seconds, mode) in enumerate(parts):
        truth = {"beats": [], "raw": {}, "breaths": [], "coherence": [], "steps": [], "lost_beats": []}
        built.parts.append(truth)
        base_host = clock.t
        send("session", 0, "start", "host")
        send("mode", 0, mode, "host")
        rate = 6000 if mode != "assess" else 6500
        events = []  # (t_ms, kind, values)
        t_beat = 400.0
        prev = None
        while t_beat < seconds * 1000:
            hr = 62 + 6 * math.sin(2 * math.pi * 0.1 * t_beat / 1000.0)
            ibi = 60000.0 / hr + rnd.gauss(0, 5)
            t_ms = int(round(t_beat))
            ibi_us = 0 if prev is None else int(round((t_beat - prev) * 1000))
            events.append((t_ms, "beat", (t_ms, ibi_us, 1400 + rnd.randrange(200), 90)))
            prev = t_beat
            t_beat += ibi
        beat_times = [e[0] for e in events]
        for t_ms in range(0, seconds * 1000, 200):
            phase = int((t_ms % 10000) / 10000.0 * (1 << 24))
            events.append((t_ms, "pacer", (t_ms, rate, phase, "in" if t_ms % 10000 < 4000 else "out",
                                           1000)))
        events.append((150, "quality", (150, "learning")))
        events.append((1500, "quality", (1500, "ok")))
        events.append((30000, "quality", (30000, "noisy")))
        events.append((33000, "quality", (33000, "ok")))
        for t_ms in range(1000, seconds * 1000, 1000):
            events.append((t_ms, "hrv", (t_ms, 620, 41000, 52000, 30)))
        if raw:
            for t0 in range(0, seconds * 1000, 40):
                xs = []
                for i in range(10):
                    t = t0 + i * 4
                    v = 30000
                    for bt in beat_times:
                        if abs(t - bt) < 400:
                            v += int(8000 * math.exp(-((t - bt) / 90.0) ** 2))
                    xs.append(v + rnd.randrange(-50, 50))
                events.append((t0, "raw", (t0, FS, xs)))
        if extras:
            for k, t_ms in enumerate(range(10700, seconds * 1000, 10000)):
                valid = 0 if 30000 <= t_ms <= 41000 else 1
                events.append((t_ms, "breath", (t_ms, valid, 110 + 7 * k, 100 + 5 * k, -10, 630, rate)))
            for t_ms in range(5000, seconds * 1000, 5000):
                ratio = -1 if t_ms < 30000 else 80 + 3 * t_ms // 1000
                events.append((t_ms, "coherence", (t_ms, ratio, 100)))
            if mode == "assess":
                for k, r in enumerate((6500, 6000, 5500)):
                    t_ms = 20000 * (k + 1)
                    events.append((t_ms, "assess_step", (t_ms, r, 6, 90 + 20 * (k == 1), 85, -5, 150,
                                                            88 + 20 * (k == 1), 6)))
                events.append((seconds * 1000 - 10, "assess_result", (seconds * 1000 - 10, "done", 5900, 6000,
                                                                      "2026-11-26", "curve", 120, -20)))
        events.sort(key=lambda e: (e[0], e[1] != "session"))
        for t_ms, kind, values in events:
            lost = gap is not None and index == 0 and gap[0] * 1000 <= t_ms < gap[1] * 1000
            if gap is not None and index == 0 and t_ms >= gap[1] * 1000 and not truth.get("reconnected"):
                clock.t = base_host + t_ms / 1000.0
                w.event("reconnected", "/dev/ttyACM0")
                truth["reconnected"] = True
            if lost and not truth.get("disconnected"):
                clock.t = base_host + t_ms / 1000.0
                w.event("disconnected", "device unplugged")
                truth["disconnected"] = True
            clock.t = max(clock.t, base_host + t_ms / 1000.0)
            send(kind, *values, lost=lost)
            if kind == "beat":
                (truth["lost_beats"] if lost else truth["beats"]).append(values)
            elif kind == "raw" and not lost:
                for i, x in enumerate(values[2]):
                    truth["raw"][t_ms + i * 4] = x
            elif kind == "breath" and not lost:
                truth["breaths"].append(values)
        send("session", seconds * 1000, "stop", "host")
        if extras:
            send("summary", seconds * 1000, mode, 621, 123, 40, rate, 5)
        truth["seconds"] = seconds
        clock.t += 1.0
    w.close()
    return built


def run_cli(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def files_in(d):
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


# ---- CSV

def test_csv_tables_have_documented_columns_and_every_record(tmp_path, capsys):
    path = tmp_path / "walk.vagal"
    built = build_session(path)
    truth = built.parts[0]
    out = tmp_path / "csv"
    status, stdout, _ = run_cli(["export", str(path), "--format", "csv", "--out", str(out), "--quiet"], capsys)
    assert status == 0, stdout
    assert files_in(out) == sorted("walk_%s.csv" % n for n in CSV_HEADERS)
    for name, header in CSV_HEADERS.items():
        with open(out / ("walk_%s.csv" % name)) as f:
            assert f.readline().strip() == header
    beats = (out / "walk_beats.csv").read_text().splitlines()[1:]
    assert len(beats) == len(truth["beats"])
    from vagal.replay import HEADER

    assert HEADER.strip() == CSV_HEADERS["beats"]  # one beats-CSV schema for replay and export
    from vagal_host.export import load
    from vagal_host.hrv_report import beat_verdicts

    verdicts = beat_verdicts(load(str(path), None)[2])
    for line, (t_ms, ibi_us, amp, conf), ok in zip(beats, truth["beats"], verdicts):
        t_s, ibi_ms, a, c, accepted = line.split(",")
        assert abs(float(t_s) - t_ms / 1000.0) < 1e-9
        assert abs(float(ibi_ms) * 1000 - ibi_us) < 1e-6  # 0.000 for a beat without an interval
        assert (int(a), int(c)) == (amp, conf)
        assert accepted == ("1" if ok else "0")
    assert "1" in [b.split(",")[4] for b in beats]
    raw = (out / "walk_raw.csv").read_text().splitlines()[1:]
    assert len(raw) == len(truth["raw"])
    got = {int(round(float(t) * 1000)): int(x) for t, x in (r.split(",") for r in raw)}
    assert got == truth["raw"]
    breaths = (out / "walk_breaths.csv").read_text().splitlines()[1:]
    assert [int(b.split(",")[1]) for b in breaths] == [b[1] for b in truth["breaths"]]
    assert [float(b.split(",")[2]) for b in breaths] == [b[2] / 10.0 for b in truth["breaths"]]
    coherence = (out / "walk_coherence.csv").read_text().splitlines()[1:]
    assert coherence[0].split(",")[1] == ""  # -1 from the device: not enough data, not a number
    notes = (out / "walk_annotations.csv").read_text()
    assert "session,start (host)" in notes and "session,stop (host)" in notes and "mode,pace (host)" in notes


def test_csv_times_are_from_each_session_start_and_part_is_chosen(tmp_path, capsys):
    path = tmp_path / "two.vagal"
    built = build_session(path, parts=((40, "pace"), (70, "practice")), raw=False)
    out = tmp_path / "o"
    status, stdout, _ = run_cli(["export", str(path), "--format", "csv", "--out", str(out), "--quiet"], capsys)
    assert status == 0
    assert "session 2" in stdout and "longest" in stdout
    beats = (out / "two_s2_beats.csv").read_text().splitlines()[1:]
    assert len(beats) == len(built.parts[1]["beats"])
    assert float(beats[0].split(",")[0]) == built.parts[1]["beats"][0][0] / 1000.0
    status, stdout, _ = run_cli(["export", str(path), "--format", "csv", "--out", str(out), "--part", "1",
                                 "--quiet"], capsys)
    assert status == 0 and "session 1" in stdout
    assert len((out / "two_s1_beats.csv").read_text().splitlines()) - 1 == len(built.parts[0]["beats"])
    status, _, err = run_cli(["export", str(path), "--format", "csv", "--part", "3"], capsys)
    assert status == 2 and "holds 2 sessions" in err


def test_host_events_become_annotations_at_device_time(tmp_path, capsys):
    path = tmp_path / "gap.vagal"
    built = build_session(path, gap=(20, 25), raw=False)
    out = tmp_path / "o"
    assert run_cli(["export", str(path), "--format", "csv", "--out", str(out), "--quiet"], capsys)[0] == 0
    rows = [r.split(",", 2) for r in (out / "gap_annotations.csv").read_text().splitlines()[1:]]
    disc = [float(t) for t, src, text in rows if src == "host" and text.startswith("disconnected")]
    reco = [float(t) for t, src, text in rows if src == "host" and text.startswith("reconnected")]
    assert len(disc) == 1 and 19.0 <= disc[0] < 20.0  # last device time heard before the drop
    assert len(reco) == 1 and 25.0 <= reco[0] < 25.5  # first device time after it
    beats = (out / "gap_beats.csv").read_text().splitlines()[1:]
    assert len(beats) == len(built.parts[0]["beats"]) and built.parts[0]["lost_beats"]


# ---- WFDB

def test_wfdb_round_trip_signal_and_beats(tmp_path, capsys):
    import numpy as np
    import wfdb

    path = tmp_path / "w.vagal"
    built = build_session(path, gap=(20, 25))
    truth = built.parts[0]
    out = tmp_path / "wf"
    status, _, _ = run_cli(["export", str(path), "--format", "wfdb", "--out", str(out), "--quiet"], capsys)
    assert status == 0
    assert files_in(out) == ["w.beat", "w.dat", "w.event", "w.hea"]
    rec = wfdb.rdrecord(str(out / "w"))
    assert rec.fs == FS and rec.sig_name == ["PPG"]
    sig = rec.p_signal[:, 0]
    for t_ms, x in truth["raw"].items():
        assert sig[t_ms * FS // 1000] == x
    in_gap = sig[21 * FS:24 * FS]
    assert np.isnan(in_gap).all()  # lines lost while disconnected: invalid samples, not made up
    assert np.isfinite(sig).sum() == len(truth["raw"])
    ann = wfdb.rdann(str(out / "w"), "beat")
    assert len(ann.sample) == len(truth["beats"])
    for s, note, (t_ms, ibi_us, amp, conf) in zip(ann.sample, ann.aux_note, truth["beats"]):
        assert s == round(t_ms * FS / 1000.0)
        assert note == "ibi_us=%d amp=%d conf=%d" % (ibi_us, amp, conf)
    ev = wfdb.rdann(str(out / "w"), "event")
    notes = list(ev.aux_note)
    assert "session: start (host)" in notes and "quality noisy" in notes
    # one per 10 s breath in 70 s, except the one that began at 20 s, while the link was down
    assert notes.count("inhale 6/min") == 6
    assert ev.sample[[i for i, n in enumerate(notes) if n == "inhale 6/min"][2]] == 30 * FS
    assert ev.sample[notes.index("quality noisy")] == 30 * FS


def test_wfdb_without_raw_is_an_annotation_record_at_ms_resolution(tmp_path, capsys):
    import wfdb

    path = tmp_path / "nr.vagal"
    built = build_session(path, raw=False)
    out = tmp_path / "wf"
    assert run_cli(["export", str(path), "--format", "wfdb", "--out", str(out), "--quiet"], capsys)[0] == 0
    assert files_in(out) == ["nr.beat", "nr.event", "nr.hea"]
    hdr = wfdb.rdheader(str(out / "nr"))
    assert hdr.n_sig == 0 and hdr.fs == 1000
    ann = wfdb.rdann(str(out / "nr"), "beat")
    assert list(ann.sample) == [b[0] for b in built.parts[0]["beats"]]


def test_wfdb_failure_mid_write_leaves_nothing(tmp_path, capsys, monkeypatch):
    import wfdb

    path = tmp_path / "f.vagal"
    build_session(path)
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("mine")

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wfdb, "wrann", broken)
    status, stdout, err = run_cli(["export", str(path), "--format", "wfdb", "--out", str(out)], capsys)
    assert status == 2 and "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert files_in(out) == ["keep.txt"]  # no .hea/.dat from before the failure, no temporaries
    fresh = tmp_path / "fresh"
    assert run_cli(["export", str(path), "--format", "wfdb", "--out", str(fresh)], capsys)[0] == 2
    assert not fresh.exists()  # created for the export, removed again


# ---- Kubios

def test_kubios_text_round_trips_to_the_beat_times_gaps_included(tmp_path, capsys):
    """Issue 17 item 8: the intervals, summed from the first beat, give every beat's session time
    within 1 ms, a lost pulse (the beat after it has no interval) included as one long interval."""
    path = tmp_path / "k.vagal"
    built = build_session(path, gap=(20, 25), raw=False)
    beats = built.parts[0]["beats"]  # those whose lines reached the file (the link was down 20-25 s)
    assert built.parts[0]["lost_beats"]
    out = tmp_path / "rr.txt"
    assert run_cli(["export", str(path), "--format", "kubios", "--out", str(out), "--quiet"], capsys)[0] == 0
    values = [float(x) for x in out.read_text().split()]
    times = [beats[0][0] + sum(values[:k]) for k in range(len(values) + 1)]
    assert len(times) == len(beats)
    assert max(abs(t - b[0]) for t, b in zip(times, beats)) < 1.0  # ms
    assert all(v > 300 for v in values)  # milliseconds, one per line
    assert files_in(tmp_path) == sorted(["k.vagal", "rr.txt"])
    # a directory as --out: the default name inside it
    d = tmp_path / "dir"
    d.mkdir()
    assert run_cli(["export", str(path), "--format", "kubios", "--out", str(d), "--quiet"], capsys)[0] == 0
    assert files_in(d) == ["k_rr.txt"]


# ---- bad input

@pytest.mark.parametrize("content, words", [
    (b"", "not a vagal session file"),
    (b"hello world\n", "not a vagal session file"),
    (b"# vagal session 1\n0.1\tbeat 1 2 3\n0.05\tbeat 2 3 4\n", "no session data"),
    (b"# vagal session 1\n# tool x\n0.000\t#connected x\n", "no session data"),
])
def test_bad_session_files_one_line_exit_2_nothing_written(tmp_path, capsys, content, words):
    path = tmp_path / "bad.vagal"
    path.write_bytes(content)
    for fmt in export_mod.FORMATS:
        out = tmp_path / ("out_" + fmt)
        status, stdout, err = run_cli(["export", str(path), "--format", fmt, "--out", str(out)], capsys)
        assert status == 2
        assert len(err.strip().splitlines()) == 1 and words in err, err
        assert not out.exists()


def test_missing_file_unknown_format_unwritable_output(tmp_path, capsys):
    status, _, err = run_cli(["export", str(tmp_path / "nope.vagal"), "--format", "csv"], capsys)
    assert status == 2 and "cannot read session file" in err and len(err.strip().splitlines()) == 1
    path = tmp_path / "ok.vagal"
    build_session(path, parts=((20, "pace"),), raw=False, extras=False)
    with pytest.raises(SystemExit) as e:
        main(["export", str(path), "--format", "edf"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "invalid choice: 'edf'" in err
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for fmt, out in (("csv", blocker), ("wfdb", blocker / "sub"), ("kubios", blocker / "rr.txt")):
        status, _, err = run_cli(["export", str(path), "--format", fmt, "--out", str(out)], capsys)
        assert status == 2 and len(err.strip().splitlines()) == 1, (fmt, err)
        assert "a_file" in err
    assert blocker.read_text() == "x"


def test_cli_subprocess_exit_status_and_one_line(tmp_path):
    path = tmp_path / "junk.vagal"
    path.write_bytes(b"\x00\x01garbage\n")
    vagal = os.path.join(os.path.dirname(sys.executable), "vagal")
    r = subprocess.run([vagal, "export", str(path), "--format", "kubios"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "not a vagal session file" in r.stderr and "Traceback" not in r.stderr
    assert files_in(tmp_path) == ["junk.vagal"]


def test_file_starting_inside_a_running_session(tmp_path, capsys):
    """Streaming began after the session started: no start line, times still from its start."""
    clock = FakeClock()
    path = tmp_path / "late.vagal"
    w = SessionWriter(str(path), "/dev/ttyACM0", "0.1.0", clock=clock)
    w.event("connected", "/dev/ttyACM0")
    lines = [("pacer", 600000, 6000, 100, "in", 10), ("beat", 600100, 900000, 1500, 90),
             ("beat", 601000, 900000, 1500, 90), ("session", 601500, "stop", "button")]
    for i, values in enumerate(lines):
        clock.t += 0.5
        w.received(protocol.encode(values[0], 40 + i, *values[1:]).rstrip("\n").encode())
    w.close()
    out = tmp_path / "o"
    status, stdout, _ = run_cli(["export", str(path), "--format", "csv", "--out", str(out), "--quiet"], capsys)
    assert status == 0 and "session 1 (10 min 02 s, stopped)" in stdout
    beats = (out / "late_beats.csv").read_text().splitlines()[1:]
    assert [b.split(",")[0] for b in beats] == ["600.100", "601.000"]
    status, _, _ = run_cli(["report", str(path), "--out", str(tmp_path / "r"), "--quiet"], capsys)
    assert status == 0
    assert "began after the session had already started" in (tmp_path / "r" / "index.html").read_text()


def test_a_session_still_running_at_the_end_of_the_file_is_described_in_plain_words(tmp_path, capsys):
    path = tmp_path / "open.vagal"
    build_session(path, parts=((40, "pace"),), raw=False)
    text = path.read_text().splitlines(keepends=True)
    path.write_text("".join(l for l in text if "\tsession " not in l or " stop " not in l))
    status, stdout, _ = run_cli(["export", str(path), "--format", "csv", "--out", str(tmp_path / "o")], capsys)
    assert status == 0 and "(40 s, still running when the recording ended)" in stdout, stdout


def test_exports_mark_rejected_beats_keep_gaps_and_name_outputs_as_given(tmp_path, capsys, monkeypatch):
    """Issue 17 item 8: WFDB labels a beat the cleaner rejected as an artefact ('|'); a beat without an
    interval (the first after a lost pulse) is one long Kubios interval, times kept; csv refuses a
    file-like --out; a Kubios name without an extension gets .txt."""
    import collections

    import wfdb

    from vagal_host import export as export_mod

    path = tmp_path / "m.vagal"
    build_session(path, raw=False)
    verdicts = export_mod.beat_verdicts(export_mod.load(str(path), None)[2])
    fake = list(verdicts)
    fake[5] = False
    monkeypatch.setattr(export_mod, "beat_verdicts", lambda part: fake)
    out = tmp_path / "wf"
    assert run_cli(["export", str(path), "--format", "wfdb", "--out", str(out), "--quiet"], capsys)[0] == 0
    symbols = list(wfdb.rdann(str(out / "m"), "beat").symbol)
    assert symbols[5] == "|" and symbols.count("|") == 1 + sum(1 for v in verdicts if v is False)
    Beat = collections.namedtuple("Beat", "t_ms ibi_us amp conf")

    class P:
        def __init__(self, beats):
            self.beats = beats

        def of(self, kind):
            return self.beats

    beats = [Beat(1000, 0, 1, 1), Beat(1900, 900000, 1, 1), Beat(2801, 901000, 1, 1),
             Beat(9950, 0, 1, 1), Beat(10850, 899600, 1, 1)]  # the pulse lost 2.8-9.9 s
    rr = export_mod.kubios_intervals(P(beats))
    times = [1000 + sum(rr[:k]) / 1000.0 for k in range(len(rr) + 1)]
    assert len(rr) == 4 and max(abs(t - b.t_ms) for t, b in zip(times, beats)) < 1.0
    assert rr[2] == 7149000  # the gap: one long interval
    status, _, err = run_cli(["export", str(path), "--format", "csv", "--out", str(tmp_path / "x.txt")], capsys)
    assert status == 2 and "looks like a file" in err and not (tmp_path / "x.txt").exists()
    assert run_cli(["export", str(path), "--format", "kubios", "--out", str(tmp_path / "rr"), "--quiet"],
                   capsys)[0] == 0
    assert (tmp_path / "rr.txt").is_file() and not (tmp_path / "rr").exists()
