"""Tables as the CLI and the benchmarks print them (markdown, so they paste into the README as they are)."""
from __future__ import annotations


def markdown_table(header: list[str], rows: list[list]) -> str:
    def fmt(v) -> str:
        return f"{v:,.1f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
