#!/usr/bin/env python3
"""Compare two outputs of `cargo xtask reproduce` (or `tmcc reproduce`).

    scripts/compare-reproduce.py OLD_DIR NEW_DIR [--ignore-key KEY ...]

Each directory holds REPORT.md, claims.json and figures/. Compared:

- claims.json: every value, exactly (numbers as written), walking objects and arrays;
  keys that record time, load or revision are skipped (`seconds`, `seconds_*`,
  `*_seconds`, `elapsed*`, `load*`, `revision`, and any --ignore-key);
- REPORT.md: line by line after blanking the timing text (the revision, `N s (M min)`,
  the load averages, the time column of the summary table);
- figures/ (and any other file): byte for byte, by sha256.

Prints what differs and exits 1 if anything does, 0 if the two are the same.
"""

import argparse
import difflib
import hashlib
import json
import re
import sys
from pathlib import Path

TIMING_KEY = re.compile(r"^(seconds.*|.*_seconds|elapsed.*|load.*|revision)$")

REPORT_TIMING = [
    (re.compile(r"at revision `[^`]*`"), "at revision `…`"),
    (re.compile(r"\b\d+ s \(\d+(\.\d+)? min"), "… s (… min"),
    (re.compile(r"\(load average [^)]*\)"), "(load average …)"),
    (re.compile(r"\| \d+ s \|$"), "| … s |"),
]

MAX_SHOWN = 40


def walk(old, new, path, ignore, out):
    """Appends to `out` one line per difference between `old` and `new` below `path`."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if TIMING_KEY.match(key) or key in ignore:
                continue
            sub = f"{path}.{key}" if path else key
            if key not in old:
                out.append(f"{sub}: only in new")
            elif key not in new:
                out.append(f"{sub}: only in old")
            else:
                walk(old[key], new[key], sub, ignore, out)
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            out.append(f"{path}: {len(old)} items in old, {len(new)} in new")
        for i, (a, b) in enumerate(zip(old, new)):
            walk(a, b, f"{path}[{i}]", ignore, out)
    elif type(old) is not type(new) or old != new:
        out.append(f"{path}: {old!r} -> {new!r}")


def claim_label(claims, path):
    """`claims[3]...` → `claims[3] (claim 3b)...` for readability."""
    m = re.match(r"claims\[(\d+)\]", path)
    if m and int(m.group(1)) < len(claims):
        return path.replace(m.group(0), f"{m.group(0)} (claim {claims[int(m.group(1))].get('id')})", 1)
    return path


def compare_json(old_dir, new_dir, ignore):
    old = json.loads((old_dir / "claims.json").read_text())
    new = json.loads((new_dir / "claims.json").read_text())
    diffs = []
    walk(old, new, "", ignore, diffs)
    claims = old.get("claims", [])
    return [claim_label(claims, d) for d in diffs]


def normalize(text):
    lines = []
    for line in text.splitlines():
        for pattern, repl in REPORT_TIMING:
            line = pattern.sub(repl, line)
        lines.append(line)
    return lines


def compare_report(old_dir, new_dir):
    old = normalize((old_dir / "REPORT.md").read_text())
    new = normalize((new_dir / "REPORT.md").read_text())
    # Only the changed lines, `-` old and `+` new, each after its `@@` line numbers.
    return [
        line
        for line in difflib.unified_diff(old, new, n=0, lineterm="")
        if not line.startswith(("---", "+++"))
    ]


def digests(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in ("REPORT.md", "claims.json")
    }


def compare_files(old_dir, new_dir):
    old, new = digests(old_dir), digests(new_dir)
    out = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            out.append(f"{name}: only in old")
        elif name not in old:
            out.append(f"{name}: only in new")
        elif old[name] != new[name]:
            out.append(f"{name}: sha256 {old[name][:12]}… -> {new[name][:12]}…")
    return out, len(set(old) & set(new))


def show(title, lines):
    n = sum(1 for line in lines if not line.startswith("@@"))
    print(f"{title}: {'identical' if not lines else f'{n} difference(s)'}")
    for line in lines[:MAX_SHOWN]:
        print(f"  {line}")
    if len(lines) > MAX_SHOWN:
        print(f"  … and {len(lines) - MAX_SHOWN} more")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--ignore-key", action="append", default=[], help="another JSON key to skip")
    args = ap.parse_args()
    for d in (args.old, args.new):
        for name in ("REPORT.md", "claims.json"):
            if not (d / name).is_file():
                sys.exit(f"error: {d / name} not found")
    json_diffs = compare_json(args.old, args.new, set(args.ignore_key))
    report_diffs = compare_report(args.old, args.new)
    file_diffs, n_common = compare_files(args.old, args.new)
    show("claims.json (timing, load and revision keys skipped)", json_diffs)
    show("REPORT.md (timing text blanked)", report_diffs)
    show(f"figures and other files ({n_common} in both, by sha256)", file_diffs)
    same = not (json_diffs or report_diffs or file_diffs)
    print("same" if same else "DIFFERENT")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
