"""The assessment's result in words: one text for the live view (vagal stream) and the report.

Built from the device's own `assess_step` rows and `assess_result` line (rule, uncertainty), so the
sentence, the table's marked row, the tallest bar and the red line of the report all say the same:
the resonance rate is the rate of the largest heart-rate swing (docs/resonance.md, Assessment).
"""


def level_x10(step):
    """A step row's bar height (bpm x 10): the swing level the rule used (`level_x10`), or for
    rows of older firmware without it, the mean swing."""
    level = getattr(step, "level_x10", None)
    return level if level is not None and level > 0 else step.swing_x10


def result_text(result):
    """One or two plain sentences for an `assess_result` record (None: '')."""
    if result is None:
        return ""
    if result.state == "failed":
        return ("The assessment could not decide: there was too little clean signal. Nothing was "
                "saved; try again sitting still with the sensor snug.")
    if result.state != "done":
        return "The assessment was stopped before the end; nothing was saved."
    rate = result.rate_mbpm / 1000.0
    rule = getattr(result, "rule", None) or "curve"
    spread = getattr(result, "spread_mbpm", 0) or 0
    pm = " (+-%.2f)" % (spread / 1000.0) if spread > 0 else ""
    head = "Your resonance rate: %.2f breaths per minute%s, one breath every %.1f seconds. " % (
        rate, pm, 60.0 / rate)
    if rule == "slowest":
        why = ("Your heart-rate swing was largest at the slowest rate tested: your resonance may be "
               "at or below it, so the device uses that rate.")
    elif rule == "fastest":
        why = ("Your heart-rate swing was largest at the fastest rate tested: your resonance may be "
               "at or above it, so the device uses that rate.")
    elif rule == "flat":
        why = ("No clear peak: the swings at the rates tested differed by less than the measurement "
               "can tell apart, so the device uses the rate with the largest swing (%.2f)."
               % (result.chosen_mbpm / 1000.0))
    else:
        why = ("It is the peak of the curve fitted through the swings at all the rates tested, the "
               "rate of your largest heart-rate swing (the tallest bar is at %.2f)."
               % (result.chosen_mbpm / 1000.0))
    return head + why
