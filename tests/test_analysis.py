"""Session re-analysis (vagal_host.analysis): same core code, same breaths as the device.

The device is simulated here with the app's documented wiring (docs/resonance.md, "Wiring"): a real
Pacer, HRV and ResonanceMeter driven by a heart whose rate swings with the pacer's breath, beats
reported a variable time after their peak, and the lines the app sends (beat, quality, pacer every
200 ms and at each turn, breath, coherence) written through the real SessionWriter.
"""

import math
import random

import pytest

from vagal import protocol
from vagal.hrv import HRV
from vagal.pacer import PHASE_ONE, Pacer
from vagal.resonance import ResonanceMeter
from vagal.ticks import TICKS_MAX, ticks_diff

from vagal_host import analysis
from vagal_host.errors import VagalError
from vagal_host.session import SessionWriter


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class DeviceSim:
    """Writes what a device running the resonance wiring would send, into a session file."""

    def __init__(self, path, seed=1, start_tick=TICKS_MAX - 3000000, send_breaths=True):
        self.rng = random.Random(seed)
        self.clock = _Clock()
        self.w = SessionWriter(str(path), "/dev/sim", "0.1.0", clock=self.clock)
        self.w.event("connected", "/dev/sim")
        self.seq = 0
        self.send_breaths = send_breaths
        self.now = start_tick  # unwrapped microseconds; the device sees now & TICKS_MAX
        self.breaths = []  # what the meter judged, as analysis.Breath (also when not sent)
        self.coherence = []
        self.send("hello", "0.1.0", 1, 250, "sim", "-")
        self.seq = 1  # hello is seq 0

    def send(self, kind, *values):
        line = protocol.encode(kind, self.seq, *values)
        self.seq = (self.seq + 1) % protocol.SEQ_MOD
        self.clock.t = max(self.clock.t, (self.now - self.t0_host) / 1e6 if hasattr(self, "t0_host") else 0)
        self.w.received(line.rstrip("\n").encode())

    def ms(self, tick_unwrapped):
        return (tick_unwrapped - self.start_us) // 1000

    def session(self, seconds, hr_bpm=62.0, swing_bpm=10.0, rate_mbpm=6000, quality_gap=None,
                new_rate=None, inhale_pct=None, lag_ms=(120, 180), ectopic_at=(), stop=True):
        """One start..stop session; quality_gap (t0_s, t1_s) makes the signal bad for a while."""
        if not hasattr(self, "t0_host"):
            self.t0_host = self.now
        self.start_us = self.now
        pacer = Pacer(rate_mbpm)
        meter = ResonanceMeter()
        hrv = HRV(32)
        pacer.start(self.now & TICKS_MAX)
        self.send("session", 0, "start", "host")
        self.send("mode", 0, "pace", "host")
        self.send("quality", 0, "ok")
        self.send("pacer", 0, pacer.rate_mbpm, pacer.phase, "in", pacer.led)
        was_in = True
        next_msg = self.now + 200000
        seen = meter.seq
        coh_seen = meter.coherence.seq
        end = self.now + int(seconds * 1e6)
        next_beat = self.now + 400000
        prev_peak = None
        queue = []  # (report tick, peak tick, ibi)
        bad = False
        nbeat = 0
        while self.now < end:
            self.now += 10000
            t_s = (self.now - self.start_us) / 1e6
            # the heart: rate follows the pacer's breath (peak near the end of inhale)
            while next_beat <= self.now:
                peak = next_beat
                ibi = peak - prev_peak if prev_peak is not None else 0
                if prev_peak is not None and nbeat in ectopic_at:
                    ibi = int(ibi * 0.6)
                    peak = prev_peak + ibi
                queue.append((peak + 1000 * self.rng.randint(*lag_ms), peak, ibi))
                prev_peak = peak
                nbeat += 1
                angle = 2 * math.pi * (pacer.phase / PHASE_ONE - 0.4)
                hr = hr_bpm + swing_bpm / 2 * math.cos(angle) + self.rng.gauss(0, 0.6)
                next_beat = peak + int(60e6 / hr)
            if quality_gap is not None:
                want_bad = quality_gap[0] <= t_s < quality_gap[1]
                if want_bad != bad:
                    bad = want_bad
                    self.send("quality", self.ms(self.now), "noisy" if bad else "ok")
                    meter.signal(not bad)
                    if bad:
                        hrv.gap()
            queue.sort()
            while queue and queue[0][0] <= self.now:
                _, peak, ibi = queue.pop(0)
                if bad:
                    continue  # no beats while the signal is bad
                accepted = hrv.add(ibi) if ibi > 0 else False
                meter.beat(peak & TICKS_MAX, ibi, accepted)
                self.send("beat", self.ms(peak), ibi, 900, 90)
            if new_rate is not None and t_s >= new_rate[0] and pacer.target_mbpm != new_rate[1]:
                pacer.set_rate(new_rate[1])
            if inhale_pct is not None and t_s >= inhale_pct[0]:
                pacer.set_ratio(inhale_pct[1])
                inhale_pct = None
            if (self.now - self.start_us) % 20000 == 0:
                tick = self.now & TICKS_MAX
                pacer.update(tick)
                meter.pace(tick, pacer)
                due = self.now >= next_msg
                if due or pacer.inhaling != was_in:
                    was_in = pacer.inhaling
                    if due:
                        next_msg = self.now + 200000
                    self.send("pacer", self.ms(self.now), pacer.rate_mbpm, pacer.phase,
                              "in" if pacer.inhaling else "out", pacer.led)
                if meter.seq != seen:
                    seen = meter.seq
                    end_ms = self.ms(self.now - ticks_diff(tick, meter.breath_end_us))
                    vals = (end_ms, int(meter.valid), meter.swing_x10, meter.fit_x10,
                            meter.phase_deg, meter.hr_x10, meter.breath_rate_mbpm)
                    self.breaths.append(vals)
                    if self.send_breaths:
                        self.send("breath", *vals)
                c = meter.coherence
                if c.seq != coh_seen:
                    coh_seen = c.seq
                    self.coherence.append((self.ms(self.now), c.coherence_x100))
                    self.send("coherence", self.ms(self.now), c.coherence_x100, c.peak_mhz)
        if not stop:
            return  # the device died mid-session
        self.send("session", self.ms(self.now), "stop", "host")
        self.send("summary", self.ms(self.now), "pace", hrv.hr_x10, 0, 0, pacer.rate_mbpm,
                  meter.valid_breaths)

    def close(self):
        self.w.close()


def _as_breath(v):
    return analysis.Breath(v[0] / 1000.0, bool(v[1]), v[2] / 10.0, v[3] / 10.0, v[4], v[5] / 10.0,
                           v[6] / 1000.0)


def assert_same_breaths(got, want, fit_tol=0.2, phase_tol=2):
    assert len(got) == len(want), (len(got), len(want))
    for g, w in zip(got, want):
        assert abs(g.t_s - w.t_s) <= 0.002, (g, w)
        assert g.valid == w.valid, (g, w)
        assert g.swing_bpm == w.swing_bpm, (g, w)
        assert g.hr_bpm == w.hr_bpm, (g, w)
        assert abs(g.fit_bpm - w.fit_bpm) <= fit_tol + 1e-9, (g, w)
        assert abs((g.phase_deg - w.phase_deg + 180) % 360 - 180) <= phase_tol, (g, w)
        assert abs(g.rate_bpm - w.rate_bpm) <= 0.002, (g, w)


@pytest.fixture(scope="module")
def device_session(tmp_path_factory):
    path = tmp_path_factory.mktemp("analysis") / "device.vagal"
    dev = DeviceSim(path, seed=3)
    dev.session(260, hr_bpm=58.0, swing_bpm=12.0, rate_mbpm=6000, quality_gap=(95.0, 104.0),
                new_rate=(150.0, 5000), inhale_pct=(120.0, 45), ectopic_at=(40,), lag_ms=(100, 700))
    dev.close()
    return path, dev


def test_reanalysis_gives_the_device_breaths(device_session):
    path, dev = device_session
    [a] = analysis.analyse_session(path)
    assert len(dev.breaths) >= 20
    assert a.device_breaths == [_as_breath(v) for v in dev.breaths]
    assert_same_breaths(a.breaths, a.device_breaths)
    # the session has both kinds of breath: judged valid, and spoiled by the bad-signal stretch
    valid = [b.valid for b in a.breaths]
    assert any(valid) and not all(valid)
    bad = [b for b in a.breaths if 95.0 <= b.t_s <= 104.0 + 10.0]
    assert bad and not any(b.valid for b in bad)


def test_reanalysis_without_breath_lines(tmp_path):
    """Until the firmware sends breath lines: the meter driven directly is the reference."""
    path = tmp_path / "nobreaths.vagal"
    dev = DeviceSim(path, seed=5, send_breaths=False)
    dev.session(200, hr_bpm=66.0, swing_bpm=8.0, rate_mbpm=5500, new_rate=(100.0, 6500))
    dev.close()
    [a] = analysis.analyse_session(path)
    assert a.device_breaths == []
    assert_same_breaths(a.breaths, [_as_breath(v) for v in dev.breaths])
    # the swing the simulated heart makes is what comes out (+-noise)
    fits = [b.fit_bpm for b in a.valid_breaths]
    assert 6.0 < sum(fits) / len(fits) < 10.0


def test_coherence_and_summary(device_session):
    path, dev = device_session
    [a] = analysis.analyse_session(path)
    got = [(round(c.t_s * 1000), -1 if c.ratio is None else round(c.ratio * 100)) for c in a.coherence]
    assert len(got) == len(dev.coherence) > 10
    for (tg, rg), (tw, rw) in zip(got, dev.coherence):
        # beats reached this device's meter 0.1-0.7 s after their peaks, the re-analysis assumes
        # 0.15 s: the 5 s schedule and the window's last point can shift by that much
        assert abs(tg - tw) <= 700
        assert abs(rg - rw) <= max(10, rw // 10), (got, dev.coherence)
    s = a.summary
    assert abs(s.duration_s - 260.0) < 0.05
    assert 55 < s.mean_hr_bpm < 61
    assert s.mode == "pace" and a.modes == [(0.0, "pace")]
    assert abs(s.final_rate_bpm - 5.0) < 1e-9
    assert s.valid_breaths == sum(1 for b in a.breaths if b.valid)
    assert a.ended == "stop" and a.source == "host"
    # the device's summary comes after its stop line and still belongs to the session
    d = a.device_summary
    assert d is not None and d.breaths == s.valid_breaths and d.rate_bpm == s.final_rate_bpm


def test_per_rate_table_groups_valid_breaths(device_session):
    path, _ = device_session
    [a] = analysis.analyse_session(path)
    by_rate = {r.rate_bpm: r for r in a.rates}
    assert set(by_rate) >= {6.0, 5.0}
    assert [r.rate_bpm for r in a.rates] == sorted(by_rate, reverse=True)
    for rate, row in by_rate.items():
        bs = [b for b in a.valid_breaths if analysis.rate_group(b.rate_bpm) == rate]
        assert row.breaths == len(bs)
        assert abs(row.swing_bpm - sum(b.swing_bpm for b in bs) / len(bs)) < 1e-9
    assert sum(r.breaths for r in a.rates) == len(a.valid_breaths)
    assert by_rate[6.0].coherence is not None and by_rate[6.0].coherence > 1.0


def test_reconstructed_pacer_and_quality(device_session):
    path, _ = device_session
    [a] = analysis.analyse_session(path)
    assert a.pacer[0].t_s == 0.0 and a.pacer[0].phase == 0.0
    assert all(0.0 <= p.phase < 1.0 for p in a.pacer)
    states = [(round(q.t0_s, 2), q.state) for q in a.quality]
    assert states == [(0.0, "ok"), (95.0, "noisy"), (104.0, "ok")]
    assert a.quality[-1].t1_s == pytest.approx(260.0, abs=0.05)
    # the ectopic beat's short interval is rejected by the same cleaner the device uses
    assert any(not b.accepted for b in a.beats[1:])
    assert len(a.hr) == sum(1 for b in a.beats if b.accepted)


def test_split_inferred_from_the_turn_lines():
    class P:
        pass

    lines = []
    # 6 breaths/min: 1677722 phase units a second; the second breath has no turn line
    for t, ph, d in ((0, 0, "in"), (3994, 6700000, "in"), (4006, 6720000, "out"),
                     (9800, 16441672, "out"), (10200, 335544, "in"), (10400, 671089, "in")):
        p = P()
        p.t_ms, p.phase, p.dir, p.rate_mbpm = t, ph, d, 6000
        lines.append(p)
    totals, splits = analysis._anchors(None, lines)
    assert totals == [0, 6700000, 6720000, 16441672, PHASE_ONE + 335544, PHASE_ONE + 671089]
    assert splits[0] == PHASE_ONE * 40 // 100  # the only whole % in 6700001..6720000
    assert splits[1] == PHASE_ONE * 40 // 100  # nothing bounds it: the previous breath's


def test_two_sessions_a_reboot_and_beats_without_sessions(tmp_path):
    path = tmp_path / "two.vagal"
    dev = DeviceSim(path, seed=7)
    dev.session(40)
    dev.now += 5000000
    dev.session(30, rate_mbpm=5000, stop=False)
    dev.seq = 0
    dev.send("hello", "0.1.0", 1, 250, "sim", "-")  # the device rebooted mid-session
    dev.seq = 1
    dev.session(25)
    dev.close()
    got = analysis.analyse_session(path)
    assert [a.index for a in got] == [0, 1, 2]
    assert [a.ended for a in got] == ["stop", "reboot", "stop"]
    assert abs(got[1].pacer[0].rate_bpm - 5.0) < 1e-9
    assert [round(a.summary.duration_s) for a in got] == [40, 30, 25]
    assert got[1].device_summary is None  # the summary after the reboot is not the lost session's
    assert [round(a.device_summary.duration_s) for a in (got[0], got[2])] == [40, 25]

    beats_only = tmp_path / "beats.vagal"
    w = SessionWriter(str(beats_only), "/dev/x", "0.1.0", clock=_Clock())
    t = 0
    for seq in range(40):
        t += 900
        w.received(protocol.encode("beat", seq, t, 900000 if seq else 0, 800, 90).rstrip("\n").encode())
    w.close()
    [a] = analysis.analyse_session(beats_only)
    assert a.source == "none" and a.breaths == [] and len(a.beats) == 40
    assert a.summary.mean_hr_bpm == pytest.approx(60 / 0.9)


def test_bad_input_names_the_problem(tmp_path):
    empty = tmp_path / "empty.vagal"
    w = SessionWriter(str(empty), "/dev/x", "0.1.0", clock=_Clock())
    w.close()
    with pytest.raises(VagalError, match="no session with beats or pacer lines"):
        analysis.analyse_session(empty)
    junk = tmp_path / "junk.vagal"
    junk.write_bytes(b"\x00\x01 not a session\n")
    with pytest.raises(VagalError, match="not a vagal session file"):
        analysis.analyse_session(junk)
    bad = tmp_path / "badphase.vagal"
    w = SessionWriter(str(bad), "/dev/x", "0.1.0", clock=_Clock())
    w.received(protocol.encode("session", 0, 0, "start", "host").rstrip("\n").encode())
    w.received(protocol.encode("pacer", 1, 0, 6000, PHASE_ONE + 5, "in", 0).rstrip("\n").encode())
    w.close()
    with pytest.raises(VagalError, match=r"pacer line \(seq 1.*phase 16777221 outside"):
        analysis.analyse_session(bad)
    with pytest.raises(VagalError, match="cannot read session file"):
        analysis.analyse_session(tmp_path / "missing.vagal")


def test_reanalysis_of_the_real_app_gives_its_breath_lines(tmp_path):
    """The firmware app (vagal.app.App) on a fake board with a simulated person: its breath lines
    and the re-analysis of its beat/quality/pacer lines must agree."""
    from test_app import run_for
    from test_app_modes import boot, person_board, write_settings
    from vagal import protocol as P

    write_settings(tmp_path, autostart=False)
    app, board = boot(tmp_path, person_board(tmp_path, resonance_hz=0.09, seed=4))
    run_for(app, board, 12)  # the detector learns before the session (the meter starts "ok")
    board.send(P.encode_command("start", 1))
    run_for(app, board, 150)
    board.send(P.encode_command("stop", 2))
    run_for(app, board, 0.5)
    path = tmp_path / "app.vagal"
    clock = _Clock()
    w = SessionWriter(str(path), "/dev/fake", "0.1.0", clock=clock)
    w.event("connected", "/dev/fake")
    for line in bytes(board.out).split(b"\n")[:-1]:
        w.received(line)
    w.close()
    [a] = analysis.analyse_session(path)
    assert a.source == "host" and a.ended == "stop"
    assert len(a.device_breaths) >= 12 and sum(b.valid for b in a.device_breaths) >= 8
    assert_same_breaths(a.breaths, a.device_breaths)
    assert a.device_summary.breaths == a.summary.valid_breaths
