"""The stub tmcc.pyi and docs/python.md's API reference describe the module as it is."""

import ast
import inspect
import pathlib
import re

import tmcc

HERE = pathlib.Path(__file__).resolve().parent
STUB = ast.parse((HERE.parent / "tmcc.pyi").read_text())
DOCS = (HERE.parents[2] / "docs" / "python.md").read_text()


def stub_names():
    """{name: set of member names (classes) or None (functions)} of the stub."""
    out = {}
    for node in STUB.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = {n.name for n in node.body
                              if isinstance(n, ast.FunctionDef) and not n.name.startswith("__")}
            out[node.name] |= {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
        elif isinstance(node, ast.FunctionDef):
            out[node.name] = None
    return out


def test_the_stub_names_every_public_name_of_the_module_and_no_other():
    stub = stub_names()
    # maturin's package re-exports the extension module, which it names `tmcc` too.
    public = {n for n in dir(tmcc)
              if not n.startswith("_") and not inspect.ismodule(getattr(tmcc, n))}
    assert public == set(stub), (public ^ set(stub))
    for cls in ("Config", "Run"):
        members = {n for n in dir(getattr(tmcc, cls)) if not n.startswith("_")}
        assert stub[cls] - {"field"} == members, (cls, stub[cls] ^ members)


def stub_params(node):
    args = [a.arg for a in node.args.args + node.args.kwonlyargs if a.arg != "self"]
    return args + ([node.args.kwarg.arg] if node.args.kwarg else [])


def module_params(obj):
    return [p for p in inspect.signature(obj).parameters if p != "self"]


def test_stub_signatures_match_the_module():
    for node in STUB.body:
        if isinstance(node, ast.FunctionDef):
            assert module_params(getattr(tmcc, node.name)) == stub_params(node), node.name
        if isinstance(node, ast.ClassDef):
            cls = getattr(tmcc, node.name)
            for m in node.body:
                is_property = isinstance(m, ast.FunctionDef) and any(
                    getattr(d, "id", None) in ("property", "staticmethod") for d in m.decorator_list)
                if isinstance(m, ast.FunctionDef) and not m.name.startswith("__") \
                        and not is_property:
                    assert module_params(getattr(cls, m.name)) == stub_params(m), m.name


def headings():
    """{documented name: its parameter names, or None without a parameter list}."""
    out = {}
    for line in re.findall(r"^#+ (.*)$", DOCS, re.M):
        for name, params in re.findall(r"`(?:tmcc\.)?([A-Za-z_.]+)(\([^`]*\))?`", line):
            names = [p.strip().split("=")[0].lstrip("*") for p in params[1:-1].split(",")]
            out[name] = [n for n in names if n] if params else None
    return out


def test_the_api_reference_in_docs_covers_the_stub_with_its_parameters():
    documented = headings()
    for node in STUB.body:
        if isinstance(node, ast.FunctionDef):
            assert documented.get(node.name) == stub_params(node), node.name
        if isinstance(node, ast.ClassDef):
            assert node.name in documented, node.name
            for m in node.body:
                if isinstance(m, ast.FunctionDef) and not m.name.startswith("__"):
                    name = f"{node.name}.{m.name}"
                    assert name in documented, name
                    if documented[name] is not None:
                        assert documented[name] == stub_params(m), name
