"""Holds asyncio.core for vasyncio_task once the boot script has imported it."""
core = None
