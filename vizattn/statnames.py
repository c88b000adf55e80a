"""The analyses' statistics as a reader names them, in one place: the Analysis tab's columns, the Data set tab's
charts and tables, and the paired comparison's figure all say the same words for the same statistic."""
from __future__ import annotations

ANALYSIS_COLUMNS = {  # the analyses' keys, as a reader's column headers
    "query_independence": "map distance between queries (GCNet)",
    "gate": "unary share of the gate (LESA)",
    "self": "weight on itself (unary share)",
    "loop1": "positions reached after loop 1",
    "effective": "positions reached after all loops",
}
WHERE_COLUMNS = {"own_class": "mass on own class", "own_instance": "mass on own object",
                 "distance_px": "mean distance (px)", "entropy": "entropy (0…1)", "queries": "queries"}
QI_PARTS = {"input": "input features", "attention": "attention maps", "output": "output features"}
SHARES = {"binary": "weight on the others (binary share)", "unary_max": "largest weight on itself"}


def section_name(section: str, rest: list[str]) -> str:
    """A reader's name of a statistic given by its section (query_independence, unary_binary, coverage, psa, where)
    and the parts after the module; a statistic this module does not know keeps its own text."""
    if section == "query_independence" and len(rest) == 1:
        return f"{ANALYSIS_COLUMNS['query_independence']}: {QI_PARTS.get(rest[0], rest[0])}"
    if section in ("self", "gate") and len(rest) == 1:  # unary_binary, its kind told by the module's label
        if rest[0] == "unary":
            return ANALYSIS_COLUMNS[section]
        return f"{rest[0]} share of the gate (LESA)" if section == "gate" else SHARES.get(rest[0], rest[0])
    if section == "coverage" and len(rest) == 1:
        return ANALYSIS_COLUMNS.get(rest[0], f"coverage {rest[0]}")
    if section == "psa" and rest:
        return f"PSA {rest[0]} weights: " + ("saturated share" if rest[1:] == ["saturated"] else "mean")
    if section == "where" and len(rest) == 1:
        return WHERE_COLUMNS.get(rest[0], rest[0])
    return " ".join([section, *rest])


def statistic_name(key: str) -> tuple[str, str]:
    """(module, a reader's name) of one of rows.parquet's statistics other than `where|…`
    ("section|module|…", the names the Analysis tab's columns use); a key not known keeps its own text."""
    parts = key.split("|")
    section, rest = parts[0], parts[1:]
    if section == "query_independence" and len(rest) == 2:
        return rest[0], section_name(section, rest[1:])
    if section == "unary_binary" and len(rest) == 2:
        module, kind = rest[0].split(" (")[0], "gate" if "(gate" in rest[0] else "self"
        return module, section_name(kind, rest[1:])
    if section == "coverage" and len(rest) == 1:  # the loops' coverage: the model's (the row says which)
        return "", section_name(section, rest)
    if section == "psa" and len(rest) in (2, 3):
        return rest[0], section_name(section, rest[1:])
    return "", key


def paired_name(statistic: str) -> str:
    """A reader's name of a paired comparison's statistic ("section.rest", vizattn.analysis.paired.parts)."""
    section, _, rest = statistic.partition(".")
    if section == "unary_binary":
        part, _, kind = rest.partition(" (")
        return section_name("gate" if kind.startswith("gate") else "self", [part])
    return section_name(section, rest.split(" ") if section == "psa" else [rest])
