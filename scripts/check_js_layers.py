#!/usr/bin/env python3
"""Fails when a dashboard module imports upwards, or exports a mutable `let`.

The dashboard's ES modules (crates/socklab/assets/*.js) go one way down:

    state, bytes  <-  frame  <-  api  <-  model  <-  views  <-  events  <-  main

A module may import only modules of a lower layer (views do not import each other), nothing
imports main, and every module must be listed below. Exported `let` bindings are refused:
shared mutable state lives in objects of `state.js`, where every writer is visible.

Usage: check_js_layers.py [ASSETS_DIR]   (exit status 1 and one line per problem on failure)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

LAYERS: list[tuple[str, ...]] = [
    ("state.js", "bytes.js"),
    ("frame.js",),
    ("api.js",),
    ("model.js",),
    (
        "sessions.js",
        "log.js",
        "listeners.js",
        "chart.js",
        "send.js",
        "search.js",
        "clientmode.js",
        "devices.js",
        "snippets.js",
        "sessionchart.js",
    ),
    ("events.js",),
    ("main.js",),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
LAYER_NAMES = ["state", "frame", "api", "model", "views", "events", "main"]

IMPORT = re.compile(
    r"""(?:^|\s)(?:import|export)\s[^;]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]""",
    re.MULTILINE,
)
EXPORT_LET = re.compile(r"^\s*export\s+(?:let|var)\b", re.MULTILINE)


def problems(assets: Path) -> list[str]:
    out: list[str] = []
    files = sorted(assets.glob("*.js"))
    if not files:
        return [f"{assets}: no JavaScript modules found"]
    for path in files:
        name = path.name
        text = path.read_text(encoding="utf-8")
        if name not in RANK:
            out.append(f"{name}: not assigned to a layer in {Path(__file__).name}")
            continue
        for m in EXPORT_LET.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append(f"{name}:{line}: exported mutable binding (keep shared state in an object)")
        for m in IMPORT.finditer(text):
            target = next(g for g in m.groups() if g)
            line = text.count("\n", 0, m.start(m.lastindex or 0)) + 1
            dep = Path(target).name
            if not target.startswith("./") or dep not in RANK:
                out.append(f"{name}:{line}: imports {target!r}, which is not a dashboard module")
                continue
            if RANK[dep] >= RANK[name]:
                src_layer, dep_layer = LAYER_NAMES[RANK[name]], LAYER_NAMES[RANK[dep]]
                out.append(
                    f"{name}:{line}: imports {dep} ({dep_layer}) from layer {src_layer}: "
                    "imports must go to a lower layer"
                )
    return out


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    assets = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "crates" / "socklab" / "assets"
    found = problems(assets)
    for p in found:
        print(f"check_js_layers: {p}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
