"""`python3 run.py test`'s skip lines: one short line per tier instead of one long line per skipped test."""

from __future__ import annotations

from pathlib import Path


def _tier(nodeid: str) -> str:
    """tests/<tier>/... -> <tier>; anything else by its first part."""
    parts = nodeid.split("::", maxsplit=1)[0].split("/")
    return parts[1] if parts[0] == "tests" and len(parts) > 1 else parts[0]


def _reason(report) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def skip_summary(reports, root: Path, width: int = 100) -> list[str]:
    """One short line per tier with skipped tests: how many, the first clause of the commonest reason, and the
    tier's README where it has one (which says how to run it)."""
    by_tier: dict[str, dict[str, int]] = {}
    for report in reports:
        reasons = by_tier.setdefault(_tier(report.nodeid), {})
        reason = _reason(report)
        reasons[reason] = reasons.get(reason, 0) + 1
    lines = []
    for tier, reasons in sorted(by_tier.items()):
        commonest = max(reasons, key=reasons.get)
        short = commonest.split(": ")[0].split("; ")[0]
        if len(short) > width:
            short = short[: width - 1] + "…"
        extra = len(reasons) - 1
        others = f" (+{extra} other reason{'s' if extra > 1 else ''})" if extra else ""
        readme = Path("tests") / tier / "README.md"
        see = f"; see {readme.as_posix()}" if (root / readme).is_file() else ""
        lines.append(f"{tier}: {sum(reasons.values())} skipped: {short}{others}{see}")
    return lines

