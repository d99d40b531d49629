"""The local stack: real emulators and the real handlers on 127.0.0.1, for the demo, tests and benchmarks."""
