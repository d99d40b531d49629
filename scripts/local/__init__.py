"""Local wing: the pipeline on this machine (emulators, the demo, uploads into it)."""
