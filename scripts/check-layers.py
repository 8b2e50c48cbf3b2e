"""Checks that socklab's Rust modules import one way down (crates/socklab/src/lib.rs, Layout).

Every `crate::` and `super::` path in the code (comments and strings ignored) is resolved to
the module it names. A module may use modules of a lower layer, or of its own layer when that
makes no cycle; never one above. Inside one top-level module the files must not form a cycle
either (a file and the parent module that declares it do not count: that is plumbing).

    python scripts/check-layers.py [--src crates/socklab/src]

Exits 0 when the graph is clean, 1 with one line per offending import otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# The layer table of DESIGN.md and lib.rs, bottom first. Each top-level module of the crate
# must appear here: a new module has to be placed in a layer before it can land.
LAYERS: list[tuple[str, ...]] = [
    ("clock", "rules", "framing", "shutdown"),
    ("model",),
    ("link",),
    ("session", "listener_state"),
    ("store",),
    ("hub",),
    ("listener",),
    ("console", "web", "schedule", "cluster", "export"),
    ("server", "config", "cli"),
]

# Imports a layer may not make even though they point down: front ends reach devices only
# through the hub, never through the code that owns the sockets.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "console": ("listener",),
    "web": ("listener",),
    "schedule": ("listener",),
    "cluster": ("listener",),
}

RANK = {name: i for i, group in enumerate(LAYERS) for name in group}
PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)")
USE_RE = re.compile(r"\b(?:pub(?:\([a-z]+\))?\s+)?use\s+([^;]*);", re.DOTALL)


def strip_comments_and_strings(text: str) -> str:
    """The code with comments, string and char literals blanked (line breaks kept)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not text[i - 1].isalnum()):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)  # type: ignore[union-attr]
            end = '"' + hashes
            j = text.find(end, i + 2 + len(hashes))
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:]):
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            i += len(m.group(0))  # type: ignore[union-attr]
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use(tree: str) -> list[str]:
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e'] (whitespace ignored)."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)  # renames do not change what is used
    tree = re.sub(r"\s+", "", tree)

    def split_top(s: str) -> list[str]:
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            cur += ch
        if cur:
            parts.append(cur)
        return parts

    def go(prefix: str, s: str) -> list[str]:
        if "{" not in s:
            return [prefix + s]
        head, _, rest = s.partition("{")
        inner = rest[: rest.rfind("}")]
        return [p for part in split_top(inner) for p in go(prefix + head, part)]

    return go("", tree)


def module_of(path: Path, src: Path) -> list[str]:
    """The module path of a source file: src/a/b.rs -> ['a', 'b'], src/a/mod.rs -> ['a']."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts == ["lib"]:
        return []
    return parts


def resolve(path: list[str], known: set[tuple[str, ...]]) -> tuple[str, ...] | None:
    """The deepest known module that `path` (absolute, from the crate root) lies in."""
    for end in range(len(path), 0, -1):
        if tuple(path[:end]) in known:
            return tuple(path[:end])
    return None


def references(code: str, here: list[str]) -> list[list[str]]:
    """Absolute module paths referenced by `crate::`/`super::`/`self::` in `code` (a file of
    module `here`, whose `super` is the parent module, for `a/b.rs` and `a/mod.rs` alike)."""
    base = here
    raw: list[str] = []
    for m in USE_RE.finditer(code):
        raw.extend(expand_use(m.group(1)))
    without_uses = USE_RE.sub("", code)
    raw.extend(m.group(0) for m in PATH_RE.finditer(without_uses) if not m.group(0).endswith("{"))
    out = []
    for r in raw:
        segs = [s for s in r.split("::") if s]
        if not segs:
            continue
        if segs[0] == "crate":
            out.append(segs[1:])
        elif segs[0] in ("super", "self"):
            cur = list(base)
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super" and cur:
                    cur.pop()
                segs = segs[1:]
            out.append(cur + segs)
    return out


def test_module_spans(code: str) -> str:
    """`code` without `#[cfg(test)] mod name { ... }` blocks (tests may use anything)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+\w+\s*\{", code):
        if m.start() < i:
            continue
        out.append(code[i : m.start()])
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += code[j] == "{"
            depth -= code[j] == "}"
            j += 1
        out.append("\n" * code.count("\n", m.start(), j))
        i = j
    out.append(code[i:])
    return "".join(out)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle in `graph`, as a list of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def check(src: Path) -> list[str]:
    """Every problem found under `src`, one line each."""
    files = sorted(p for p in src.rglob("*.rs") if p.name != "main.rs")
    known = {tuple(module_of(p, src)) for p in files}
    problems: list[str] = []
    top_graph: dict[str, set[str]] = {}
    file_graph: dict[str, set[str]] = {}
    for path in files:
        here = module_of(path, src)
        if not here:
            continue  # lib.rs declares the modules
        top = here[0]
        rel = path.relative_to(src).as_posix()
        if top not in RANK:
            problems.append(f"{rel}: module {top!r} is in no layer of scripts/check-layers.py")
            continue
        code = test_module_spans(strip_comments_and_strings(path.read_text()))
        for ref in references(code, here):
            target = resolve(ref, known)
            if target is None or not target:
                continue
            other = target[0]
            if other == top:
                # Same top-level module: a file-level edge, unless one declares the other.
                a, b = tuple(here), target
                if a != b and a[: len(b)] != b and b[: len(a)] != a:
                    file_graph.setdefault("::".join(a), set()).add("::".join(b))
                continue
            if other not in RANK:
                continue
            shown = "::".join(ref)
            if RANK[other] > RANK[top]:
                problems.append(f"{rel}: upward import crate::{shown} ({top} may not use {other})")
            elif other in FORBIDDEN.get(top, ()):
                problems.append(f"{rel}: crate::{shown}: {top} may not use {other}")
            elif RANK[other] == RANK[top]:
                top_graph.setdefault(top, set()).add(other)
    if cycle := find_cycle(top_graph):
        problems.append("import cycle between modules: " + " -> ".join(cycle))
    if cycle := find_cycle(file_graph):
        problems.append("import cycle between files: " + " -> ".join(cycle))
    return problems


def main() -> int:
    """Runs the check and prints what it found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent.parent / "crates" / "socklab" / "src"
    parser.add_argument("--src", type=Path, default=default, help="the crate's src directory")
    args = parser.parse_args()
    problems = check(args.src)
    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("check-layers: every import goes down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
