"""vagal.pipeline: the one wiring of HRV, meter, controller and pacer (runs on every runtime)."""

from portable import no_alloc

from vagal.hrv import HRV
from vagal.pipeline import Pipeline
from vagal.resonance import ResonanceMeter
from vagal.ticks import ticks_add


class _Steer:
    """A controller that asks for a rate after its n-th update (the pipeline glides the pacer there)."""

    def __init__(self, after, rate_mbpm, start_mbpm):
        self.after = after
        self.rate_mbpm = start_mbpm
        self.target = rate_mbpm
        self.updates = 0

    def update(self, now_us):
        self.updates += 1
        if self.updates == self.after:
            self.rate_mbpm = self.target


def _reference_run(pipe, events):
    """The same events through HRV and ResonanceMeter wired by hand, as app.py did before the
    pipeline, and through pipe; -> (HRV verdict, RMSSD) per beat and the judged breaths of each.
    RMSSD shows a missed gap: an interval paired across a loss changes it."""
    hrv = HRV(32)
    meter = ResonanceMeter()
    mine = []
    ref = []
    out_p = []
    out_r = []
    for kind, t, v in events:
        if kind == "beat":
            mine.append((pipe.beat(t, v), pipe.hrv.rmssd_us))
            acc = False
            if v > 0:
                acc = hrv.add(v)
            else:
                hrv.gap()
            meter.beat(t, v, acc)
            ref.append((acc, hrv.rmssd_us))
        elif kind == "signal":
            pipe.signal(v)
            meter.signal(v)
            if not v:
                hrv.gap()
        else:
            pipe.tick(t)
            meter.pace(t, pipe.pacer)
            if pipe.meter.seq != len(out_p):
                out_p.append((pipe.meter.valid, pipe.meter.swing_x10, pipe.meter.fit_x10, pipe.meter.phase_deg))
            if meter.seq != len(out_r):
                out_r.append((meter.valid, meter.swing_x10, meter.fit_x10, meter.phase_deg))
    return mine, ref, out_p, out_r


def test_the_pipeline_is_the_wiring_the_app_had():
    """Beats with a sinusoidal heart rate, a premature beat, a lost signal and a first beat after it:
    the pipeline's HRV verdicts and judged breaths equal HRV + ResonanceMeter wired by hand."""
    pipe = Pipeline()
    pipe.pacer.set_rate(6000, False)
    t = 1000
    pipe.pacer.start(t)
    events = []
    next_beat = 0
    ibi = 0
    k = 0
    for i in range(6000):  # 120 s on the 20 ms grid
        t = ticks_add(t, 20000)
        events.append(("tick", t, 0))
        if i * 20000 >= next_beat:
            k += 1
            # 60-70 bpm swinging with the 10 s breath; beat 40 premature, 41 its pause
            ibi = 920000 + (i % 500 - 250) * 240 if k not in (40, 41) else (450000 if k == 40 else 1400000)
            events.append(("beat", t, 0 if k == 1 or k == 90 else ibi))
            next_beat += ibi
        if i == 4000:
            events.append(("signal", t, False))
        if i == 4200:
            events.append(("signal", t, True))
    mine, ref, out_p, out_r = _reference_run(pipe, events)
    verdicts = [m[0] for m in mine]
    assert mine == ref and False in verdicts and verdicts.count(True) > 80
    assert out_p == out_r and len(out_p) >= 8, (len(out_p), len(out_r))


def test_the_controller_runs_each_tick_and_the_pacer_glides_to_its_rate():
    pipe = Pipeline()
    p = pipe.pacer
    t = 5000
    p.set_rate(6000, False)
    p.start(t)
    pipe.ctrl = _Steer(10, 5000, 6000)
    for _ in range(20):
        t = ticks_add(t, 20000)
        pipe.tick(t)
    assert pipe.ctrl.updates == 20
    assert p.target_mbpm == 5000
    pipe.ctrl = None
    t = ticks_add(t, 20000)
    pipe.tick(t)  # no controller: the pacer goes on at its rate
    assert p.target_mbpm == 5000


def test_beat_signal_and_tick_do_not_allocate():
    pipe = Pipeline()
    p = pipe.pacer
    t = 5000
    p.start(t)
    pipe.ctrl = _Steer(100, 5500, 6000)
    for i in range(4000):  # 80 s: breaths judged, coherence computed, the rate changed once
        t = ticks_add(t, 20000)
        no_alloc(pipe.tick, t)
        if i % 43 == 0:
            no_alloc(pipe.beat, t, 860000)
    no_alloc(pipe.signal, False)
    no_alloc(pipe.beat, t, 0)
    no_alloc(pipe.signal, True)
    assert pipe.meter.seq >= 6 and p.target_mbpm == 5500
