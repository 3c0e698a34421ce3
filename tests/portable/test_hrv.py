"""Interval cleaning and fixed-point HR / RMSSD / SDNN (vagal/hrv.py) against plain float maths."""

from vagal.hrv import HRV, isqrt
import portable


def _stats(ibis_us):
    """Float reference: (hr bpm, rmssd us, sdnn us) of consecutive intervals."""
    n = len(ibis_us)
    mean = sum(ibis_us) / n
    sd = (sum((v - mean) ** 2 for v in ibis_us) / (n - 1)) ** 0.5
    d = [ibis_us[i + 1] - ibis_us[i] for i in range(n - 1)]
    rmssd = (sum(v * v for v in d) / len(d)) ** 0.5
    return 60e6 / mean, rmssd, sd


def _rhythm(n, seed=1):
    """Sinus-like intervals around 900 ms with a breathing swing and a little noise (us)."""
    s = seed * 7919 + 13
    out = []
    for i in range(n):
        s = (s * 1103515245 + 12345) & 0x7FFFFFFF
        noise = (s % 21) - 10                               # -10..10 ms
        swing = (60, 35, -20, -60, -35, 20)[i % 6]          # a 6-beat breath
        out.append((900 + swing + noise) * 1000)
    return out


def test_isqrt():
    for n in (0, 1, 2, 3, 4, 15, 16, 17, 99, 100, 12345678, (1 << 30) - 1):
        r = isqrt(n)
        assert r * r <= n < (r + 1) * (r + 1), (n, r)


def test_hr_rmssd_sdnn_match_float_maths():
    ibis = _rhythm(32)
    h = HRV(32)
    for v in ibis:
        assert h.add(v), v
    hr, rmssd, sdnn = _stats(ibis)
    assert h.count == 32
    assert abs(h.hr_x10 - hr * 10) <= 1, (h.hr_x10, hr)
    assert abs(h.rmssd_us - rmssd) <= 200, (h.rmssd_us, rmssd)   # 100-us resolution steps
    assert abs(h.sdnn_us - sdnn) <= 200, (h.sdnn_us, sdnn)


def test_window_slides():
    ibis = _rhythm(40)
    h = HRV(16)
    for v in ibis:
        h.add(v)
    hr, rmssd, sdnn = _stats(ibis[-16:])
    assert h.count == 16
    assert abs(h.hr_x10 - hr * 10) <= 1
    assert abs(h.sdnn_us - sdnn) <= 200


def test_implausible_intervals_are_rejected():
    h = HRV(32)
    for v in _rhythm(10):
        h.add(v)
    for bad in (250000, 2100000, 0, -5):
        assert not h.add(bad), bad
    assert h.count == 10 and h.rejected == 4


def test_an_ectopic_pair_is_left_out_and_makes_no_false_difference():
    ibis = _rhythm(20)
    h = HRV(32)
    for v in ibis[:10]:
        h.add(v)
    before = h.rmssd_us
    # a premature beat 30 % early and its compensatory pause: passes a 350 ms jump rule, not 20 %
    assert not h.add(630000)
    assert not h.add(1170000)
    for v in ibis[10:]:
        assert h.add(v), v
    assert h.count == 20 and h.rejected == 2
    # RMSSD only from consecutive accepted pairs: the pair across the ectopic gap is not counted
    d = [ibis[i + 1] - ibis[i] for i in range(19) if i != 9]
    want = (sum(v * v for v in d) / len(d)) ** 0.5
    assert abs(h.rmssd_us - want) <= 200, (h.rmssd_us, want, before)


def _steady(h, ms, n):
    """n intervals of about ms (+-5 ms), all of which must be accepted."""
    for i in range(n):
        v = (ms + (i % 3) * 5 - 5) * 1000
        assert h.add(v), (i, v)


def test_a_partly_compensatory_pause_is_left_out_and_normal_beats_follow():
    # ECG of the NeuroKit2 recording at 258 s: 699, then a premature 550 and a pause of only 800
    # (+14 %, inside the jump rule), then normal intervals 620-630 ms
    h = HRV(32)
    _steady(h, 690, 12)
    assert h.add(699000)
    assert not h.add(550000)          # premature: 21 % short
    assert not h.add(800000)          # its pause makes up more than half of the shortfall
    for v in (620000, 629000, 589000, 670000, 640000):
        assert h.add(v), v            # judged against 699, not against the pause
    assert h.rejected == 2


def test_an_interval_after_a_short_one_that_does_not_compensate_is_kept():
    h = HRV(32)
    _steady(h, 700, 12)
    assert h.add(700000)
    assert not h.add(540000)          # 160 ms short
    assert h.add(740000)              # 40 ms long: less than half of 160, an ordinary beat
    assert h.rejected == 1


def test_the_rhythm_is_found_again_after_odd_beats_moved_the_reference():
    # BIDMC 01 at 415 s: 663, 536 and 463 ms each pass the 20 % step rule, 888 is rejected, and
    # the normal 663 ms beats after it are 43 % longer than the last accepted interval
    h = HRV(32)
    _steady(h, 663, 20)
    assert h.add(536000) and h.add(463000)
    assert not h.add(888000)
    for i in range(8):
        assert h.add((663 + (i % 2) * 7) * 1000), i
    assert h.rejected == 1


def test_recovery_does_not_take_an_interval_far_from_the_rhythm():
    h = HRV(32)
    _steady(h, 800, 20)
    assert not h.add(1250000)         # a missed beat or an artefact
    assert not h.add(1050000)         # 31 % above the window mean: still rejected
    assert h.add(820000)


def test_large_breathing_swings_are_kept():
    # slow breathing at 6/min, HR 55..85 bpm: beat-to-beat steps up to ~12 %
    h = HRV(32)
    hr = (55, 60, 67, 75, 82, 85, 82, 75, 67, 60)
    for i in range(40):
        assert h.add(60000000 // hr[i % 10]), i


def test_a_lasting_change_of_rhythm_is_adopted():
    h = HRV(32)
    for v in _rhythm(20):
        h.add(v)
    accepted = 0
    for i in range(20):               # HR jumps from ~67 to 120 bpm and stays there
        if h.add(500000 + (i % 3) * 5000):
            accepted += 1
    assert accepted >= 10, accepted
    assert 1150 <= h.hr_x10 <= 1210, h.hr_x10


def test_gap_breaks_the_successive_differences():
    ibis = _rhythm(12)
    h = HRV(32)
    for v in ibis[:6]:
        h.add(v)
    h.gap()
    for v in ibis[6:]:
        h.add(v)
    d = [ibis[i + 1] - ibis[i] for i in range(11) if i != 5]
    want = (sum(v * v for v in d) / len(d)) ** 0.5
    assert abs(h.rmssd_us - want) <= 200, (h.rmssd_us, want)


def test_extremes_stay_small_ints_and_add_allocates_nothing():
    h = HRV(64)
    ibis = []
    for i in range(64):
        ibis.append(2000000 if i % 2 else 1700000)  # the largest steps the cleaner lets through

    def feed():
        n = 0
        for v in ibis:
            if h.add(v):
                n += 1
        return n

    h.add(1800000)
    n = portable.no_alloc(feed)
    assert n == 64, n
    assert h.sdnn_us > 0 and h.rmssd_us > 0
    assert h._sum_dsq < (1 << 30) and h._sum_ms < (1 << 30)


def test_odd_beat_rules_allocate_nothing_at_the_extremes():
    # a premature beat and its pause, a drift of the reference and the recovery from it, range
    # rejections: every branch of add() near the longest intervals, with the heap locked
    h = HRV(64)
    for i in range(40):
        h.add(1750000 if i % 2 else 1650000)
    odd = [1350000, 2000000, 1700000, 1450000, 1200000, 2000000, 1700000, 2100000, 0]
    took = [None] * len(odd)

    def feed():
        for i in range(len(odd)):
            took[i] = h.add(odd[i])

    portable.no_alloc(feed)
    #            premature pause  normal drift drift  odd    recovery range range
    assert took == [False, False, True, True, True, False, True, False, False], took
    assert h._sum_dsq < (1 << 30) and h._sum_ms < (1 << 30)
