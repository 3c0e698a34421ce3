# Freezing vagal into a custom MicroPython build for the Pico (bytecode in flash, no .mpy to deploy):
#   make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/vagal/firmware/manifest.py
# The port's own manifest comes first: it provides asyncio, which the app needs.
# Installing from the repository instead, with mip (package.json next to this file):
#   mpremote mip install --target / github:<owner>/<repo>/firmware
include("$(PORT_DIR)/boards/manifest.py")

# Every .py under vagal/ (relative to this file), frozen as the package `vagal`.
package("vagal")

# Runs at boot. A frozen main.py wins over /main.py, and .frozen comes before /lib in sys.path, so
# on such a build `vagal deploy` changes nothing that runs: rebuild instead (deploy warns about it).
module("main.py")
