"""The performance report: run every bench script (each prints JSON), gather the results
into one JSON file and render one markdown table with the machine, the date and the
command of each figure.

    python bench/report.py [--only cache,http] [--out bench/results.json]
                           [--markdown bench/results.md] [--timeout 1800]
    python bench/report.py --from bench/results.json   # re-render, run nothing

A script that fails or prints no JSON is recorded with its exit code and the end of its
stderr, and the report goes on. Numbers are flattened to ``section.key`` rows; strings
and booleans (targets met or not) are kept as they are.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SKIP = {"report", "_asgi"}  # this script and the shared helpers


def scripts(only: list[str] | None) -> list[Path]:
    found = sorted(
        p for p in HERE.glob("*.py") if p.stem not in SKIP and not p.stem.startswith("_")
    )
    found = [p for p in found if not p.stem.endswith("_app")]  # apps the benches serve
    if only:
        found = [p for p in found if p.stem in only]
    return found


def machine() -> dict[str, Any]:
    cpu = ""
    info = Path("/proc/cpuinfo")
    if info.exists():
        match = re.search(r"model name\s*:\s*(.+)", info.read_text())
        cpu = match[1].strip() if match else ""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
    }


def last_json(stdout: str) -> Any:
    """The JSON document a script printed (the whole output, else its last {...} block)."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    start = text.rfind("\n{")
    while start >= 0:
        try:
            return json.loads(text[start + 1 :])
        except ValueError:
            start = text.rfind("\n{", 0, start)
    return json.loads(text[text.index("{") :]) if "{" in text else None


def run_one(path: Path, timeout: float) -> dict[str, Any]:
    command = [sys.executable, str(path.relative_to(HERE.parent))]
    started = time.monotonic()
    entry: dict[str, Any] = {"command": "python " + " ".join(command[1:])}
    try:
        done = subprocess.run(
            command, cwd=HERE.parent, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        entry |= {"ok": False, "error": f"timed out after {timeout:.0f} s"}
        return entry
    entry["seconds"] = round(time.monotonic() - started, 1)
    try:
        result = last_json(done.stdout) if done.returncode == 0 else None
    except ValueError:
        result = None
    if result is None:
        entry |= {"ok": False, "exit_code": done.returncode, "error": done.stderr[-2000:]}
    else:
        entry |= {"ok": True, "result": result}
    return entry


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Leaves of a JSON document as ``(dotted.key, value)``; lists of scalars joined."""
    if isinstance(value, dict):
        rows: list[tuple[str, Any]] = []
        for key, item in value.items():
            rows += flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return [(prefix, ", ".join(map(str, value)))]
        rows = []
        for i, item in enumerate(value):
            rows += flatten(item, f"{prefix}[{i}]")
        return rows
    return [(prefix, value)]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Measured {report['date']} on {m['cpu'] or 'unknown CPU'} ({m['cores']} cores), "
        f"Python {m['python']}, {m['system']}; load average at start "
        f"{m['load_average_at_start']}. Command: `{report['command']}`.",
        "",
        "| bench | figure | value | command |",
        "|---|---|---|---|",
    ]
    for name, entry in report["benches"].items():
        if not entry.get("ok"):
            error = _cell(str(entry.get("error", ""))[:120])
            lines.append(f"| {name} | **failed** | {error} | `{entry['command']}` |")
            continue
        for key, value in flatten(entry["result"]):
            if key in ("bench", "machine") or key.startswith("machine."):
                continue
            lines.append(f"| {name} | {key} | {_cell(value)} | `{entry['command']}` |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="Comma-separated script names.")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--markdown", type=Path, default=HERE / "results.md")
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds per script.")
    parser.add_argument("--from", dest="source", type=Path, help="Re-render this JSON file.")
    args = parser.parse_args()
    if args.source:
        report = json.loads(args.source.read_text())
    else:
        only = [n.strip() for n in args.only.split(",") if n.strip()] or None
        report = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python bench/report.py" + (f" --only {args.only}" if only else ""),
            "machine": machine(),
            "benches": {},
        }
        for path in scripts(only):
            print(f"running {path.name} ...", file=sys.stderr, flush=True)
            report["benches"][path.stem] = run_one(path, args.timeout)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    args.markdown.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
