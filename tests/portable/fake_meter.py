"""A stand-in for vagal.resonance.ResonanceMeter that hands controllers one judged breath at a time
(the assessment and tuner tests). Portable: also runs on the MicroPython ports."""


class FakeCoherence:
    seq = 0
    coherence_x100 = -1


class FakeMeter:
    def __init__(self):
        self.seq = 0
        self.valid = True
        self.swing_x10 = 0
        self.fit_x10 = 0
        self.phase_deg = 0
        self.breath_start_us = 0
        self.coherence = FakeCoherence()

    def breath(self, start_us, fit_x10, phase_deg, valid=True):
        self.seq += 1
        self.breath_start_us = start_us
        self.fit_x10 = fit_x10
        self.swing_x10 = fit_x10 + 10
        self.phase_deg = phase_deg
        self.valid = valid
