#!/usr/bin/env python3
"""Prints the import graph between candor's modules and fails on a circle.

    python3 scripts/module-graph.py [--depth N] [src-dir]

Reads every `crate::a::b` path in the non-test code of src/ (what `use` and inline
paths name), groups files by their module path cut to --depth levels (1: api, engine,
...; 2: api::chat, engine::scheduler, ...), and prints one line per module with what it
imports. Exits 1 and names the circle if two modules import each other, directly or
through others. Test modules (`#[cfg(test)] mod tests`) are left out: tests may look
anywhere. tests/layout.rs runs it on src/ and models/src at depths 1 and 2.
"""
import os
import re
import sys


def module_of(path, root):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return [rel[0]]
    return rel


def expand(text):
    """`crate::a::{b, c::{d, e}}` -> `crate::a::b crate::a::c::d crate::a::c::e`."""
    out = []
    i = 0
    pat = re.compile(r"crate::((?:[A-Za-z_][A-Za-z0-9_]*::)*)\{")
    while True:
        m = pat.search(text, i)
        if not m:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        prefix = "crate::" + m.group(1)
        inner = expand("\n".join(
            prefix[:-2] if part.strip() == "self" else prefix + part.strip()
            for part in split_top(text[m.end():j - 1])))
        out.append(inner)
        i = j


def split_top(s):
    """Splits `a, b::{c, d}` at the commas outside braces."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def main():
    args = sys.argv[1:]
    depth = 1
    if args[:1] == ["--depth"]:
        depth = int(args[1])
        args = args[2:]
    root = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "src")
    edges = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            text = open(path, encoding="utf-8").read()
            text = re.split(r"#\[cfg\(test\)\]\s*(?:pub(?:\(crate\))? )?mod \w+", text)[0]
            text = expand(re.sub(r"//.*", "", text))
            me = "::".join(module_of(path, root)[:depth])
            deps = edges.setdefault(me, set())
            for m in re.finditer(r"crate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)", text):
                target = "::".join(m.group(1).split("::")[:depth])
                # A path into a module at this depth, not an item of the crate root.
                if target and target != me and not me.startswith(target + "::"):
                    deps.add(target)
    for me in sorted(edges):
        print(f"{me:32} -> {', '.join(sorted(edges[me])) or '(nothing)'}")
    # Circles: depth-first search for a back edge.
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in sorted(edges.get(n, ())):
            if state.get(d) == 1:
                circle = stack[stack.index(d):] + [d]
                print("circle: " + " -> ".join(circle))
                sys.exit(1)
            if d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    print("no circles")


main()
