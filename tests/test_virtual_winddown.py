"""Issue #4 acceptance end to end: a 20-minute wind-down on the virtual board (max speed), read
through its pseudo-terminal. The fake-clock test in test_app_modes.py checks the curve within
0.1 breaths/min; here the whole device does it: person, detector, meter, pacer, link."""

import json

from test_virtual_board import _lines
from vagal_host.virtual import VirtualBoard, person_spec


def test_winddown_20_minutes_on_the_virtual_board(tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"mode": "winddown", "winddown_min": 20, "resonance_mbpm": 5500}))
    with VirtualBoard(speed="max", settings_path=str(settings), respawn=False,
                      person=person_spec(seed=8, hr=62, adherence=1.0)) as vb:
        lines = _lines(vb.port, lambda p: p[0] == b"session" and p[3] == b"stop", 240)
        log = vb.log_text()
    kinds = [p[0] for p in lines]
    assert b"summary" in kinds, log[-500:]
    stop = [p for p in lines if p[0] == b"session" and p[3] == b"stop"]
    assert stop and stop[-1][4] == b"auto", stop
    t_stop = int(stop[-1][2])
    # 20 minutes, plus holds while the pulse did not follow (at most half as long again)
    assert 1200000 <= t_stop <= 1800000, t_stop
    pacer = [(int(p[2]), int(p[3]), int(p[6])) for p in lines if p[0] == b"pacer"]
    rates = [r for t, r, _ in pacer if t > 3000]
    assert rates[0] >= 10000 and 5500 <= rates[-1] <= 5510, (rates[:3], rates[-3:])
    assert all(b <= a for a, b in zip(rates, rates[1:])), "the rate only slows"
    first_min = max(led for t, _, led in pacer if t < 60000)
    last_min = max(led for t, _, led in pacer if t > t_stop - 30000)
    assert first_min > 5000 and last_min <= 600, (first_min, last_min)
    summary = [p for p in lines if p[0] == b"summary"][-1]
    assert summary[3] == b"winddown" and int(summary[7]) == 5500, summary
    errors = [p for p in lines if p[0] == b"log" and p[2] == b"error"]
    assert not errors, errors


def test_haptic_only_winddown_is_followed_by_touch(tmp_path):
    """With the light off (winddown_haptic_only) the simulated person feels the motor's cues
    (host/virtual_board/fakes/machine.py, LightWatcher) and breathes with them: the heart rate
    swings in step with the pacer, so the ramp is not held to its limit (1.5 x its length)."""
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"mode": "winddown", "winddown_min": 4, "resonance_mbpm": 5500,
                                    "winddown_haptic_only": True}))
    with VirtualBoard(speed="max", settings_path=str(settings), respawn=False,
                      person=person_spec(seed=9, hr=64, adherence=1.0)) as vb:
        lines = _lines(vb.port, lambda p: p[0] == b"session" and p[3] == b"stop", 120)
        log = vb.log_text()
    stop = [p for p in lines if p[0] == b"session" and p[3] == b"stop"]
    assert stop and stop[-1][4] == b"auto", log[-500:]
    t_stop = int(stop[-1][2])
    assert max(int(p[6]) for p in lines if p[0] == b"pacer") == 0  # dark throughout
    breaths = [(int(p[2]), int(p[3]), int(p[5]), int(p[6])) for p in lines if p[0] == b"breath"]
    later = [b for b in breaths if b[0] > 60000]
    locked = [b for b in later if b[1] and b[2] >= 20 and abs(b[3]) <= 100]
    # the HR follows the felt pacer: most breaths swing >= 2 bpm at a steady phase
    assert len(locked) >= 0.7 * len(later), breaths
    assert 240000 <= t_stop <= 300000, t_stop  # held for at most a quarter, not the half it may
