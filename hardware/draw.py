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


def render_readme(text):
    """The README text with both generated blocks rewritten."""
    text = replace_block(text, PIN_BEGIN, PIN_END, pin_table())
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


def draw(out_dir):
    """Write wiring.svg and wiring.png into out_dir; returns their paths."""
    d, _ = build()
    os.makedirs(out_dir, exist_ok=True)
    svg = os.path.join(out_dir, "wiring.svg")
    png = os.path.join(out_dir, "wiring.png")
    d.save(svg)
    d.save(png, dpi=130)
    return svg, png


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
