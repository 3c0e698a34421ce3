"""vagal host tools: run the firmware's own core on recordings, talk to the board, show sessions."""
