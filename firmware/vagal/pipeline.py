"""The one wiring of the core: beats and signal quality in, HRV and the resonance meter fed, the mode's
controller run, the pacer steered.

Why a class of its own: the device (vagal.app), the re-analysis of a session (vagal_host.analysis),
the simulated populations and the tests must put the same parts together in the same order; when each
wrote its own copy, a change to the app changed the device and not the tools that judge it.

Order of events, the contract every caller keeps:
  beat(t_us, ibi_us)   each beat as the detector reports it (ibi 0: the first after a gap), at most
                       BEAT_REPORT_LAG_US after its peak t_us on average (the detector's latency)
  signal(ok)           each change of the detector's signal quality
  tick(now_us)         every ~20 ms: pacer.update(now), meter.pace(now, pacer), then the controller
                       (anything with update(now_us) and rate_mbpm), whose rate the pacer glides to
A pacer that is only a view of recorded lines (analysis) calls pace(now_us) instead of tick(now_us).
Per beat and per tick: no allocation, integers only (the same as the parts it wires).
"""

from vagal.hrv import HRV
from vagal.pacer import Pacer
from vagal.resonance import ResonanceMeter

# The detector hands a beat over 130-160 ms after its peak on the shared recordings (never more than
# 0.5 s): host tools that feed beats from a model or a file deliver them this long after their peak.
BEAT_REPORT_LAG_US = 150000
TICK_US = 20000  # the app updates the pacer, meter and controller every 20 ms (its LED task)


class Pipeline:
    """HRV, ResonanceMeter, Pacer and the current controller, wired as on the device."""

    def __init__(self, pacer=None, hrv_window=32):
        self.hrv = HRV(hrv_window)
        self.meter = ResonanceMeter()
        self.pacer = Pacer() if pacer is None else pacer
        self.ctrl = None  # Assessment, Tuner, WindDown or None (fixed rate)

    def beat(self, t_us, ibi_us):
        """A beat from the detector; -> True if HRV accepted its interval."""
        accepted = False
        if ibi_us > 0:
            accepted = self.hrv.add(ibi_us)
        else:
            self.hrv.gap()  # the first beat after a gap: no interval to pair with the one before
        self.meter.beat(t_us, ibi_us, accepted)
        return accepted

    def signal(self, ok):
        """The detector's signal quality changed (ok: a pulse is being read)."""
        if not ok:
            self.hrv.gap()
        self.meter.signal(ok)

    def tick(self, now_us):
        """Advance the pacer to now, then pace()."""
        self.pacer.update(now_us)
        self.pace(now_us)

    def pace(self, now_us):
        """The meter reads the pacer's breath; the controller decides the rate the pacer glides to."""
        p = self.pacer
        self.meter.pace(now_us, p)
        c = self.ctrl
        if c is not None:
            c.update(now_us)
            if c.rate_mbpm != p.target_mbpm:
                p.set_rate(c.rate_mbpm)
