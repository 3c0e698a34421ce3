"""Draw the wiring diagram and write the generated blocks of hardware/README.md, all from pins.py.

Why generated: the firmware (firmware/vagal/board.py) takes its pins from firmware/vagal/pins.py, so
the drawing, the README pin table and the design numbers are derived from the same module and cannot
silently drift. tests/test_hardware.py fails if the committed README differs from what this writes.

    .venv/bin/python hardware/draw.py              # hardware/wiring.svg, wiring.png, README blocks
    .venv/bin/python hardware/draw.py --out DIR    # drawings into DIR only (README untouched)
    .venv/bin/python hardware/draw.py --check      # exit 1 if the README blocks are stale
"""

import argparse
import math
import os
import sys

os.environ.setdefault("MPLBACKEND", "Agg")  # headless: must be set before matplotlib loads
os.environ.setdefault("SOURCE_DATE_EPOCH", "0")  # reproducible SVG: no build date in its metadata

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "firmware"))

from vagal import pins  # noqa: E402  (needs the path above)

README = os.path.join(HERE, "README.md")

# ---------------------------------------------------------------------------------------------
# Design inputs (datasheet values; the README's "Design numbers" block is computed from these)
# ---------------------------------------------------------------------------------------------
V_3V3 = 3.3  # Pico 3V3(OUT), also the GPIO high level (IOVDD) and ADC_AVDD
GPIO_DRIVE_DEFAULT_A = 0.004  # RP2040 pad drive strength after reset (RP2040 datasheet 2.19.6.3)
GPIO_DRIVE_MAX_A = 0.012  # strongest pad drive setting
IOVDD_TOTAL_MAX_A = 0.050  # sum of all GPIO source current, I_IOVDD_MAX (RP2040 datasheet 5.2.3)
RAIL_3V3_MAX_A = 0.300  # Pico datasheet: keep the load on 3V3(OUT) under 300 mA
PICO_OWN_A = 0.040  # the Pico itself running MicroPython, generous (typically 20-30 mA)
SENSOR_A = 0.004  # Pulse Sensor Amped: ~4 mA at 5 V (pulsesensor.com), less at 3.3 V
LED_VF = 2.0  # amber/yellow 590 nm LED forward voltage, typical (datasheet at 20 mA)
LED_VF_LOW = 1.8  # forward voltage is lower at ~2 mA: gives the worst-case (highest) current
LED_TARGET_A = 0.002  # 2 mA: visible but dim in a dark room; PWM dims it further
MOTOR_RUN_A = 0.060  # 10 mm coin ERM (e.g. Adafruit 1201) running at 3 V
MOTOR_STALL_A = 0.150  # design worst case: start/stall ~2x running current, rounded up
MOSFET_RDS_ON = 0.048  # AO3400A R_DS(on) max at V_GS = 2.5 V (we drive the gate at 3.3 V)
PULL_UP_MIN = 50e3  # RP2040 internal pull-up, 50-80 kOhm (RP2040 datasheet 5.2.3)
ADC_BITS = 12
ADC_R_IN_MIN = 100e3  # RP2040 ADC input impedance, minimum (RP2040 datasheet 5.2.3, ADC table)

# Chosen parts (the BOM lists the same values; tests/test_hardware.py checks that)
E12 = (1.0, 1.2, 1.5, 1.8, 2.2, 2.7, 3.3, 3.9, 4.7, 5.6, 6.8, 8.2)


def e12_at_least(ohms):
    """Smallest E12 resistor value >= ohms (rounding up keeps the current at or below target)."""
    decade = 10 ** math.floor(math.log10(ohms))
    for mantissa in E12 + (10.0,):
        value = round(mantissa * decade, 6)
        if value >= ohms - 1e-9:
            return value
    raise AssertionError("unreachable")


R_LED = e12_at_least((V_3V3 - LED_VF) / LED_TARGET_A)
R_FILTER = 1e3  # sensor RC filter series resistor
C_FILTER = 10e-6  # sensor RC filter capacitor to AGND
R_GATE = 100.0  # series gate resistor
R_GATE_PULLDOWN = 100e3  # keeps the MOSFET off while GP15 is not yet driven
C_BULK = 100e-6  # reservoir next to the motor


def fmt_ohms(r):
    """'680 Ω', '1 kΩ', '100 kΩ'."""
    if r >= 1e3:
        k = r / 1e3
        return ("%g kΩ" % k)
    return "%g Ω" % r


def fmt_farads(c):
    """'10 µF', '100 nF'."""
    if c >= 1e-6:
        return "%g µF" % (c * 1e6)
    return "%g nF" % (c * 1e9)


def design_rows():
    """(quantity, formula, result) rows: every number the README argues with, computed here."""
    rows = []
    led_exact = (V_3V3 - LED_VF) / LED_TARGET_A
    led_i = (V_3V3 - LED_VF) / R_LED
    led_i_max = (V_3V3 - LED_VF_LOW) / R_LED
    rows.append(("LED resistor, exact", "R = (3.3 V - Vf) / I = (3.3 - %.1f) / %.3f A" % (LED_VF, LED_TARGET_A),
                 "%.0f Ω -> next E12 up: %s" % (led_exact, fmt_ohms(R_LED))))
    rows.append(("LED current", "I = (3.3 - %.1f) / %s (at Vf = %.1f V: %.2f mA)"
                 % (LED_VF, fmt_ohms(R_LED), LED_VF_LOW, led_i_max * 1e3),
                 "%.2f mA (pin limit at default drive: %.0f mA)" % (led_i * 1e3, GPIO_DRIVE_DEFAULT_A * 1e3)))
    rows.append(("Motor stall vs one GPIO", "%.0f mA / %.0f mA (strongest drive setting)"
                 % (MOTOR_STALL_A * 1e3, GPIO_DRIVE_MAX_A * 1e3),
                 "%.1fx too much: needs a transistor" % (MOTOR_STALL_A / GPIO_DRIVE_MAX_A)))
    rows.append(("Motor stall vs all GPIOs", "%.0f mA / %.0f mA (I_IOVDD_MAX, whole chip)"
                 % (MOTOR_STALL_A * 1e3, IOVDD_TOTAL_MAX_A * 1e3),
                 "%.1fx the whole chip's IO budget" % (MOTOR_STALL_A / IOVDD_TOTAL_MAX_A)))
    total = PICO_OWN_A + SENSOR_A + led_i_max + MOTOR_STALL_A
    rows.append(("3V3 rail, worst case", "Pico %.0f + sensor %.0f + LED %.1f + motor stall %.0f mA"
                 % (PICO_OWN_A * 1e3, SENSOR_A * 1e3, led_i_max * 1e3, MOTOR_STALL_A * 1e3),
                 "%.0f mA of %.0f mA (%.0f%%)" % (total * 1e3, RAIL_3V3_MAX_A * 1e3, 100 * total / RAIL_3V3_MAX_A)))
    rows.append(("MOSFET drop at stall", "V = I * R_DS(on) = %.3f A * %.3f Ω; P = I² R"
                 % (MOTOR_STALL_A, MOSFET_RDS_ON),
                 "%.1f mV, %.1f mW" % (MOTOR_STALL_A * MOSFET_RDS_ON * 1e3, MOTOR_STALL_A ** 2 * MOSFET_RDS_ON * 1e3)))
    rows.append(("Gate pull-down current", "3.3 V / %s" % fmt_ohms(R_GATE_PULLDOWN),
                 "%.0f µA while the motor is on" % (V_3V3 / R_GATE_PULLDOWN * 1e6)))
    rows.append(("Button current when pressed", "3.3 V / R_PU(min %s)" % fmt_ohms(PULL_UP_MIN),
                 "≤ %.0f µA" % (V_3V3 / PULL_UP_MIN * 1e6)))
    rows.append(("ADC step", "3.3 V / 2^%d" % ADC_BITS,
                 "%.3f mV per count (read_u16 rescales to 0..65535)" % (V_3V3 / 2 ** ADC_BITS * 1e3)))
    fc = 1 / (2 * math.pi * R_FILTER * C_FILTER)
    rows.append(("RC filter corner", "fc = 1 / (2π R C) = 1 / (2π * %s * %s)" % (fmt_ohms(R_FILTER), fmt_farads(C_FILTER)),
                 "%.1f Hz" % fc))
    for f in (50, 60):
        gain = 1 / math.sqrt(1 + (f / fc) ** 2)
        rows.append(("RC filter at %d Hz mains" % f, "gain = 1 / sqrt(1 + (f/fc)²)",
                     "%.2f (%.1f dB)" % (gain, 20 * math.log10(gain))))
    rows.append(("RC filter delay", "τ = R C (same for every beat, cancels in intervals)",
                 "%.0f ms" % (R_FILTER * C_FILTER * 1e3)))
    rows.append(("ADC loading error", "R / (R + R_in) = %s / (%s + %s)"
                 % (fmt_ohms(R_FILTER), fmt_ohms(R_FILTER), fmt_ohms(ADC_R_IN_MIN)),
                 "≤ %.1f%% gain (amplitude only, not timing)" % (100 * R_FILTER / (R_FILTER + ADC_R_IN_MIN))))
    return rows


# ---------------------------------------------------------------------------------------------
# README generated blocks
# ---------------------------------------------------------------------------------------------
PIN_BEGIN = "<!-- pins:begin (generated by hardware/draw.py from firmware/vagal/pins.py; do not edit) -->"
PIN_END = "<!-- pins:end -->"
DESIGN_BEGIN = "<!-- design:begin (generated by hardware/draw.py; do not edit) -->"
DESIGN_END = "<!-- design:end -->"


def pin_peripheral(gpio, function):
    """The RP2040 block a pin uses, as the table shows it."""
    if function == pins.ADC:
        return "ADC%d" % pins.adc_channel(gpio)
    if function == pins.PWM:
        return "PWM slice %d, channel %s" % (pins.pwm_slice(gpio), "AB"[pins.pwm_channel(gpio)])
    return "GPIO"


def pin_table():
    """Markdown table of pins.PINS: signal, GPIO, header pin, function, peripheral, wiring."""
    lines = [
        "| Signal | GPIO | Pico header pin | Function | RP2040 block | Connects to |",
        "|---|---|---|---|---|---|",
    ]
    for name, gpio, function, description in pins.PINS:
        header = pins.PICO_HEADER_PIN.get(gpio)
        header_text = str(header) if header is not None else "on board"
        lines.append("| %s | GP%d | %s | %s | %s | %s |"
                     % (name, gpio, header_text, function, pin_peripheral(gpio, function), description))
    lines.append("")
    lines.append("Power and ground: " + ", ".join(
        "%s = pin %d" % (net, pin) for net, pin in sorted(pins.PICO_POWER_PIN.items(), key=lambda kv: kv[1])) + ".")
    return "\n".join(lines)


def design_table():
    """Markdown table of design_rows()."""
    lines = ["| Quantity | Formula | Result |", "|---|---|---|"]
    for quantity, formula, result in design_rows():
        lines.append("| %s | %s | %s |" % (quantity, formula, result))
    return "\n".join(lines)


def replace_block(text, begin, end, body):
    """Replace what lies between the begin and end markers; ValueError if a marker is missing."""
    i = text.find(begin)
    j = text.find(end)
    if i < 0 or j < 0 or j < i:
        raise ValueError("README is missing the marker pair %r ... %r" % (begin, end))
    return text[: i + len(begin)] + "\n" + body + "\n" + text[j:]


COST_BEGIN = "<!-- cost:begin (generated by hardware/draw.py from bom.csv; do not edit) -->"
COST_END = "<!-- cost:end -->"
BOM = os.path.join(HERE, "bom.csv")
CLONE_SENSOR_USD = 3.00  # a PulseSensor clone (the bom's sensor row names it); the branded one is in the bom


def bom_costs(path=BOM):
    """(required, optional) total USD from bom.csv: quantity x approx_cost_usd; a row whose part
    name says "(optional)" is optional. ValueError naming the row for a bad number."""
    import csv

    required = optional = 0.0
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            try:
                cost = int(row["quantity"]) * float(row["approx_cost_usd"])
            except (TypeError, ValueError):
                raise ValueError("%s line %d: quantity/approx_cost_usd not numbers" % (path, n))
            if "(optional)" in row["part"]:
                optional += cost
            else:
                required += cost
    return round(required, 2), round(optional, 2)


def sensor_cost(path=BOM):
    """approx_cost_usd of the pulse sensor row (the part whose price a clone changes)."""
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["part"].lower().startswith("pulse sensor"):
                return float(row["approx_cost_usd"])
    raise ValueError("%s has no pulse sensor row" % path)


def cost_text(path=BOM):
    required, optional = bom_costs(path)
    clone = required - sensor_cost(path) + CLONE_SENSOR_USD
    return ("The required parts cost about **%.2f USD** with the branded pulse sensor, **%.2f USD** with a "
            "clone sensor (about %.2f USD); the optional battery and charger add %.2f USD. "
            "(Summed from bom.csv by `make hardware`.)" % (required, clone, CLONE_SENSOR_USD, optional))


def render_readme(text):
    """The README text with its generated blocks rewritten."""
    text = replace_block(text, PIN_BEGIN, PIN_END, pin_table())
    text = replace_block(text, COST_BEGIN, COST_END, cost_text())
    return replace_block(text, DESIGN_BEGIN, DESIGN_END, design_table())


# ---------------------------------------------------------------------------------------------
# The wiring diagram
# ---------------------------------------------------------------------------------------------
def pin_label(name):
    """'GP26 ADC0' style label of a PINS entry, from pins.py."""
    for pname, gpio, function, _ in pins.PINS:
        if pname == name:
            if function == pins.ADC:
                return "GP%d / ADC%d" % (gpio, pins.adc_channel(gpio))
            return "GP%d" % gpio
    raise KeyError(name)


def header(name):
    """Header pin number (as text) of a PINS entry."""
    return str(pins.PICO_HEADER_PIN[getattr(pins, name)])


def build():
    """The schemdraw Drawing, and its polarity-sensitive parts by name (tests check their direction)."""
    import matplotlib
    import schemdraw
    import schemdraw.elements as elm

    matplotlib.rcParams["svg.hashsalt"] = "vagal"  # reproducible SVG ids: regenerating changes nothing
    schemdraw.use("matplotlib")
    power = pins.PICO_POWER_PIN
    with schemdraw.Drawing(show=False) as d:
        d.config(fontsize=11, unit=2.5)
        # IcPins on a side are listed bottom to top.
        pico = elm.Ic(
            pins=[
                elm.IcPin(name="AGND", pin=str(power["AGND"]), side="left", anchorname="AGND"),
                elm.IcPin(name=pin_label("PPG_ADC"), pin=header("PPG_ADC"), side="left", anchorname="PPG"),
                elm.IcPin(name="3V3(OUT)", pin=str(power["3V3"]), side="left", anchorname="V3V3"),
                elm.IcPin(name="GND", pin=str(power["GND"]), side="right", anchorname="GND"),
                elm.IcPin(name=pin_label("LED_PWM") + " LED_PWM", pin=header("LED_PWM"), side="right",
                          anchorname="LED"),
                elm.IcPin(name=pin_label("BUTTON") + " BUTTON", pin=header("BUTTON"), side="right",
                          anchorname="BTN"),
                elm.IcPin(name=pin_label("MOTOR_PWM") + " MOTOR_PWM", pin=header("MOTOR_PWM"), side="right",
                          anchorname="MOTOR"),
            ],
            edgepadW=0.8, edgepadH=0.8, pinspacing=2.2, leadlen=1.0,
        ).label("Raspberry Pi Pico / Pico H", loc="top")
        d += pico

        # --- Pulse sensor on the left, its three pins level with the Pico's ---------------------
        d += elm.Line().at(pico.PPG).left(1.2)
        node = d.here
        d += elm.Dot()
        d += elm.Resistor().left().label(fmt_ohms(R_FILTER), loc="top")
        d += elm.Line().left(1.0)
        sensor = elm.Ic(
            pins=[
                elm.IcPin(name="- black", side="right", anchorname="GND"),
                elm.IcPin(name="S purple", side="right", anchorname="SIG"),
                elm.IcPin(name="+ red", side="right", anchorname="VCC"),
            ],
            pinspacing=2.2, edgepadW=0.5, leadlen=0.5,
        ).label("Pulse sensor (PPG)", loc="top").right().anchor("SIG")
        d += sensor
        d += elm.Capacitor().down().at(node).toy(pico.AGND).label(fmt_farads(C_FILTER), loc="bottom")
        d += elm.Dot()
        d += elm.Ground().label("AGND", loc="right")
        d += elm.Line().at(pico.AGND).to(sensor.GND)
        d += elm.Line().at(pico.V3V3).to(sensor.VCC).label("3V3 (pin %d)" % power["3V3"], loc="top")

        # --- Right side: GND, LED, button, motor driver -----------------------------------------
        d += elm.Line().at(pico.GND).right(1.0)
        d += elm.Ground().label("GND", loc="right")

        led_resistor = elm.Resistor().at(pico.LED).right().label(fmt_ohms(R_LED), loc="top")
        d += led_resistor
        led = elm.LED().right().label("amber LED", loc="top")
        d += led
        d += elm.Line().right(0.5)
        d += elm.Ground()

        d += elm.Line().at(pico.BTN).right(1.0)
        d += elm.Button().right().label("push button", loc="top")
        d += elm.Line().right(0.5)
        d += elm.Ground()

        d += elm.Resistor().at(pico.MOTOR).right().label(fmt_ohms(R_GATE), loc="top")
        d += elm.Line().right(5.0)
        gate = d.here
        d += elm.Dot()
        d += elm.Line().right(1.0)
        fet = elm.NFet().right().reverse().anchor("gate").label("AO3400A\nN-MOSFET", loc="right")
        d += fet
        d += elm.Resistor().down().at(gate).length(2.6).label(fmt_ohms(R_GATE_PULLDOWN), loc="bottom")
        d += elm.Ground()
        d += elm.Ground().at(fet.source)
        d += elm.Line().at(fet.drain).up(0.6)
        drain = d.here
        d += elm.Dot()
        motor = elm.Motor().up().label("coin\nmotor", loc="bottom")
        d += motor
        top = d.here
        d += elm.Dot()
        d += elm.Vdd().label("3V3")
        d += elm.Line().at(drain).right(2.2)
        diode = elm.Diode().up().label("1N5819", loc="bottom")  # anode = start, cathode (bar) = end
        d += diode
        d += elm.Line().to(top)
        d += elm.Line().at(top).left(2.6)
        bulk = elm.Capacitor(polar=True).down().length(2.5).label(fmt_farads(C_BULK) + "\n∥ 100 nF", loc="top")
        d += bulk  # "+" at the start
        d += elm.Ground()

        below = pico.AGND[1] - 2.4
        d += elm.Label().at((pico.center[0], below)).label(
            "Sensor returns to AGND (pin %d); motor returns to GND (pin %d). "
            "LED: PWM slice %d, motor: PWM slice %d. Status: onboard LED GP%d."
            % (power["AGND"], power["GND"], pins.pwm_slice(pins.LED_PWM), pins.pwm_slice(pins.MOTOR_PWM),
               pins.STATUS_LED), fontsize=10)

    parts = {"led": led, "led_resistor": led_resistor, "motor": motor, "diode": diode, "bulk": bulk,
             "fet": fet, "pico": pico, "sensor": sensor}
    return d, parts


# ---------------------------------------------------------------------------------------------
# The breadboard view: where each part and wire goes on a half-size breadboard
# ---------------------------------------------------------------------------------------------
BOARD_COLUMNS = 30  # half-size breadboard: 30 columns, rows a-e and f-j, a pair of rails each side
ROW_Y = {"a": 10, "b": 9, "c": 8, "d": 7, "e": 6, "f": 4, "g": 3, "h": 2, "i": 1, "j": 0}
RAIL_Y = {"top+": 12.4, "top-": 11.6, "bottom-": -1.6, "bottom+": -2.4}
PICO_TOP_ROW, PICO_BOTTOM_ROW = "c", "h"  # the Pico H's two pin rows are 0.7 in apart: c and h


def pico_hole(header_pin):
    """(column, row) of a Pico header pin, the Pico lying USB-left over the centre gap.

    Turned so its USB end is on the left, pins 1-20 run left to right along the bottom row and
    pins 40-21 along the top row (Pico datasheet pinout)."""
    if not 1 <= header_pin <= 40:
        raise ValueError("no Pico header pin %r" % (header_pin,))
    if header_pin <= 20:
        return header_pin, PICO_BOTTOM_ROW
    return 41 - header_pin, PICO_TOP_ROW


def breadboard_layout():
    """Every wire and part as (kind, label, (column, row-or-rail), (column, row-or-rail)).

    The Pico end of every wire comes from pins.py (PICO_HEADER_PIN, PICO_POWER_PIN) through
    pico_hole(), two holes away from the pin in the same column (the Pico's own pin takes the hole
    in its row; a column's five holes are one node)."""
    power = pins.PICO_POWER_PIN

    def beside(header_pin):
        col, row = pico_hole(header_pin)
        return col, ("a" if row == PICO_TOP_ROW else "j")

    def gp(name):
        return beside(pins.PICO_HEADER_PIN[getattr(pins, name)])

    return [
        # power: 3V3(OUT) to both red rails, AGND to the top blue rail, GND to the bottom blue rail
        ("wire", "3V3(OUT) pin %d" % power["3V3"], beside(power["3V3"]), (beside(power["3V3"])[0], "top+")),
        ("wire", "AGND pin %d" % power["AGND"], beside(power["AGND"]), (beside(power["AGND"])[0], "top-")),
        ("wire", "GND pin %d" % power["GND"], beside(power["GND"]), (beside(power["GND"])[0], "bottom-")),
        ("jumper", "3V3 to the bottom red rail", (30, "top+"), (30, "bottom+")),
        # pulse sensor: its signal through the RC filter to GP26 / ADC0
        ("wire", pin_label("PPG_ADC"), gp("PPG_ADC"), (23, "a")),
        ("resistor", fmt_ohms(R_FILTER), (23, "c"), (26, "c")),
        ("capacitor", fmt_farads(C_FILTER), (23, "e"), (24, "top-")),
        ("sensor", "pulse sensor: purple (S)", (26, "a"), None),
        ("sensor", "pulse sensor: red (+)", (27, "top+"), None),
        ("sensor", "pulse sensor: black (-)", (28, "top-"), None),
        # LED: GP13 -> resistor -> anode, cathode to GND
        ("resistor", fmt_ohms(R_LED), gp("LED_PWM")[:1] + ("i",), (21, "i")),
        ("led", "amber LED: long leg (anode) in f21", (21, "f"), (21, "bottom-")),
        # button: GP14 to one leg, the opposite leg to GND
        ("wire", pin_label("BUTTON"), gp("BUTTON"), (23, "j")),
        ("button", "push button", (23, "g"), (25, "g")),
        ("wire", "button to GND", (25, "j"), (25, "bottom-")),
        # motor driver: GP15 -> 100 ohm -> gate; 100 k gate to GND; source GND; drain to the motor
        ("wire", pin_label("MOTOR_PWM"), gp("MOTOR_PWM"), (26, "j")),
        ("resistor", fmt_ohms(R_GATE), (26, "i"), (27, "i")),
        ("resistor", fmt_ohms(R_GATE_PULLDOWN), (27, "j"), (27, "bottom-")),
        ("mosfet", "AO3400A on adapter: G S D", (27, "f"), (29, "f")),
        ("wire", "source to GND", (28, "j"), (28, "bottom-")),
        ("motor", "coin motor: black (-) to drain, red (+) to 3V3", (29, "j"), (30, "bottom+")),
        ("diode", "1N5819: band (cathode) to 3V3", (29, "i"), (29, "bottom+")),
        ("capacitor", fmt_farads(C_BULK) + " (+ leg to 3V3) and 100 nF", (30, "bottom+"), (30, "bottom-")),
    ]


def _hole_xy(hole):
    col, where = hole
    return float(col), float(RAIL_Y[where] if where in RAIL_Y else ROW_Y[where])


def build_breadboard():
    """The breadboard view as a matplotlib Figure (white, opaque: readable on any background)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, FancyBboxPatch, Rectangle

    fig = Figure(figsize=(13.0, 7.2), facecolor="white")
    ax = fig.add_axes((0.01, 0.02, 0.98, 0.93))
    ax.set_xlim(-4.5, BOARD_COLUMNS + 12.5)
    ax.set_ylim(-4.6, 15.2)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("vagal on a half-size breadboard (generated from firmware/vagal/pins.py)", fontsize=12)
    ax.add_patch(FancyBboxPatch((0.2, -3.1), BOARD_COLUMNS + 0.6, 16.2, boxstyle="round,pad=0.1",
                                facecolor="#f3efe6", edgecolor="#9a948a", zorder=0))
    for name, y in RAIL_Y.items():
        colour = "#c62828" if name.endswith("+") else "#1565c0"
        ax.plot([0.6, BOARD_COLUMNS + 0.4], [y + (0.35 if name.startswith("top") == name.endswith("+") else -0.35)] * 2,
                color=colour, lw=1.2, zorder=1)
        ax.text(-0.1, y, "+" if name.endswith("+") else "-", color=colour, ha="right", va="center", fontsize=11)
    for col in range(1, BOARD_COLUMNS + 1):
        for y in list(ROW_Y.values()) + list(RAIL_Y.values()):
            ax.add_patch(Rectangle((col - 0.12, y - 0.12), 0.24, 0.24, facecolor="#5d5a55", zorder=1))
        if col % 5 == 0 or col == 1:
            ax.text(col, 10.8, str(col), ha="center", va="center", fontsize=7, color="#5d5a55")
    for row, y in ROW_Y.items():
        ax.text(0.55, y, row, ha="center", va="center", fontsize=7, color="#5d5a55")
    ax.text(BOARD_COLUMNS + 1.3, RAIL_Y["top+"], "3V3", color="#c62828", va="center", fontsize=8)
    ax.text(BOARD_COLUMNS + 1.3, RAIL_Y["top-"], "AGND", color="#1565c0", va="center", fontsize=8)
    ax.text(BOARD_COLUMNS + 1.3, RAIL_Y["bottom-"], "GND", color="#1565c0", va="center", fontsize=8)
    ax.text(BOARD_COLUMNS + 1.3, RAIL_Y["bottom+"], "3V3", color="#c62828", va="center", fontsize=8)

    # the Pico H over the centre gap, USB to the left, used pins named
    ax.add_patch(Rectangle((0.55, ROW_Y["h"] - 0.45), 20.0, ROW_Y["c"] - ROW_Y["h"] + 0.9,
                           facecolor="#2e7d32", edgecolor="#1b5e20", zorder=3))
    ax.add_patch(Rectangle((-0.2, 4.3), 1.0, 1.4, facecolor="#b0b0b0", edgecolor="#666", zorder=4))
    ax.text(10.5, 5.0, "Raspberry Pi Pico H  (USB end left)", color="white", ha="center", va="center",
            fontsize=11, zorder=4)
    used = {pins.PICO_HEADER_PIN[getattr(pins, n)]: pin_label(n) for n in ("PPG_ADC", "LED_PWM", "BUTTON",
                                                                            "MOTOR_PWM")}
    for net in ("3V3", "AGND", "GND"):
        used[pins.PICO_POWER_PIN[net]] = net
    for header_pin in range(1, 41):
        col, row = pico_hole(header_pin)
        y = ROW_Y[row]
        ax.add_patch(Rectangle((col - 0.17, y - 0.17), 0.34, 0.34, facecolor="#d4af37", zorder=4))
        if header_pin in used:
            dy = -0.75 if row == PICO_TOP_ROW else 0.75
            ax.text(col, y + dy, "%d\n%s" % (header_pin, used[header_pin].split(" /")[0]), color="white",
                    ha="center", va="center", fontsize=6.5, zorder=5)

    wire_colours = {"3V3": "#c62828", "GND": "#212121", "AGND": "#212121"}
    notes = []
    for kind, label, a, b in breadboard_layout():
        xa, ya = _hole_xy(a)
        if kind == "sensor":
            colour = {"purple": "#7b1fa2", "red": "#c62828", "black": "#212121"}[label.split(": ")[1].split()[0]]
            ax.plot([xa, xa + 2.2 + (xa - 26) * 0.6], [ya, 14.6], color=colour, lw=2.4, zorder=6,
                    solid_capstyle="round")
            continue
        xb, yb = _hole_xy(b)
        if kind == "wire":
            colour = next((c for k, c in wire_colours.items() if label.startswith(k)), "#ef6c00")
            if "GND" in label:
                colour = "#212121"
            # a wire arcs over the holes it passes, so it is never read as lying in a row
            mx, my = (xa + xb) / 2, (ya + yb) / 2
            bend = 0.18 * math.hypot(xb - xa, yb - ya)
            cx, cy = (mx, my + bend) if abs(xb - xa) > abs(yb - ya) else (mx + bend, my)
            t = [k / 20.0 for k in range(21)]
            ax.plot([(1 - u) ** 2 * xa + 2 * (1 - u) * u * cx + u * u * xb for u in t],
                    [(1 - u) ** 2 * ya + 2 * (1 - u) * u * cy + u * u * yb for u in t],
                    color=colour, lw=2.2, zorder=6, solid_capstyle="round")
        elif kind == "jumper":  # around the board's right edge, clear of the holes
            ax.plot([xa, xa + 1.0, xa + 1.0, xb], [ya, ya, yb, yb], color="#c62828", lw=2.2, zorder=6)
        elif kind == "resistor":
            ax.plot([xa, xb], [ya, yb], color="#777", lw=1.2, zorder=6)
            mx, my = (xa + xb) / 2, (ya + yb) / 2
            ax.add_patch(FancyBboxPatch((mx - 0.55, my - 0.2), 1.1, 0.4, boxstyle="round,pad=0.05",
                                        facecolor="#e8c99b", edgecolor="#8d6e63", zorder=7))
            ax.text(mx, my + (0.55 if my > -1 else -0.6), label, ha="center", va="center", fontsize=7.5,
                    zorder=9, bbox=dict(boxstyle="round,pad=0.1", facecolor="white", edgecolor="none",
                                        alpha=0.85))
            continue
        elif kind == "capacitor":
            ax.plot([xa, xb], [ya, yb], color="#777", lw=1.2, zorder=6)
            mx, my = (xa + xb) / 2, (ya + yb) / 2
            ax.add_patch(Circle((mx, my), 0.38, facecolor="#1e88e5", edgecolor="#0d47a1", zorder=7))
        elif kind == "led":
            ax.plot([xa, xb], [ya, yb], color="#777", lw=1.2, zorder=6)
            ax.add_patch(Circle((xa, (ya + yb) / 2), 0.42, facecolor="#ffb300", edgecolor="#e65100", zorder=7))
        elif kind == "button":
            ax.add_patch(Rectangle((xa - 0.3, ya - 0.9), xb - xa + 0.6, 1.2, facecolor="#424242",
                                   edgecolor="black", zorder=7))
            ax.add_patch(Circle(((xa + xb) / 2, ya - 0.3), 0.3, facecolor="#9e9e9e", zorder=8))
        elif kind == "mosfet":
            ax.add_patch(Rectangle((xa - 0.35, ya - 0.4), xb - xa + 0.7, 0.8, facecolor="#283593",
                                   edgecolor="black", zorder=7))
            for k, pin in enumerate("GSD"):
                ax.text(xa + k, ya + 0.65, pin, ha="center", fontsize=7, zorder=8)
        elif kind == "motor":
            ax.plot([xa, BOARD_COLUMNS + 3.6], [ya, -3.6], color="#212121", lw=2.0, zorder=6)
            ax.plot([xb, BOARD_COLUMNS + 4.0], [yb, -3.6], color="#c62828", lw=2.0, zorder=6)
            ax.add_patch(Circle((BOARD_COLUMNS + 3.8, -3.6), 0.6, facecolor="#9e9e9e", edgecolor="black",
                                zorder=7))
            ax.text(BOARD_COLUMNS + 4.6, -3.6, "coin motor", fontsize=8, va="center")
        elif kind == "diode":
            ax.plot([xa, xb], [ya, yb], color="#777", lw=1.2, zorder=6)
            my = (ya + yb) / 2
            ax.add_patch(Rectangle((xa - 0.18, my - 0.5), 0.36, 1.0, facecolor="#212121", zorder=7))
            band = my - 0.4 if yb < ya else my + 0.3
            ax.add_patch(Rectangle((xa - 0.18, band), 0.36, 0.12, facecolor="#cfd8dc", zorder=8))
        notes.append(label)
    ax.text(BOARD_COLUMNS + 0.9, 14.4, "pulse sensor cable\n(purple S, red +, black -)", fontsize=8, va="top")
    legend = ["Parts (left to right):"] + ["- " + n for n in notes if not n.startswith(("3V3", "AGND", "GND"))]
    ax.text(BOARD_COLUMNS + 2.0, 9.6, "\n".join(legend), fontsize=7.5, va="top", family="DejaVu Sans")
    ax.text(0.6, -4.3, "Wires from the Pico start in the same column as its pin (rows a/j); a column's five "
            "holes are one node. Sensor to AGND (top blue rail), motor and LED to GND (bottom blue rail).",
            fontsize=8)
    return fig


def draw(out_dir):
    """Write wiring.svg/png (schematic) and breadboard.svg/png into out_dir, all on white; returns
    their paths."""
    d, _ = build()
    os.makedirs(out_dir, exist_ok=True)
    svg = os.path.join(out_dir, "wiring.svg")
    png = os.path.join(out_dir, "wiring.png")
    d.save(svg, transparent=False)  # opaque white: the black lines stay visible on a dark page
    d.save(png, transparent=False, dpi=130)
    fig = build_breadboard()
    bsvg = os.path.join(out_dir, "breadboard.svg")
    bpng = os.path.join(out_dir, "breadboard.png")
    fig.savefig(bsvg, facecolor="white", metadata={"Date": None})
    fig.savefig(bpng, facecolor="white", dpi=110)
    return svg, png, bsvg, bpng


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="directory for wiring.svg/png (default: hardware/, and README is rewritten)")
    parser.add_argument("--check", action="store_true", help="only check the README blocks are up to date")
    args = parser.parse_args(argv)

    with open(README, encoding="utf-8") as f:
        current = f.read()
    wanted = render_readme(current)
    if args.check:
        if wanted != current:
            print("hardware/README.md is stale: run `make hardware`", file=sys.stderr)
            return 1
        print("hardware/README.md is up to date")
        return 0
    for path in draw(args.out or HERE):
        print("wrote", os.path.relpath(path))
    if args.out is None and wanted != current:
        tmp = README + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(wanted)
        os.replace(tmp, README)  # atomic: never a half-written README
        print("wrote", os.path.relpath(README))
    return 0


if __name__ == "__main__":
    sys.exit(main())
