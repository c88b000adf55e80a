"""Models vizattn did not write, brought in by adapters that produce our records: one file per foreign family."""
