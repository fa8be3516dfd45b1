#!/usr/bin/env python3
"""meson test cdef: tensorbridge.cdef says what the headers say.

    tests/cdef_check.py --cdef BUILD/include/tensorbridge/tensorbridge.cdef \\
        --gen-cdef scripts/gen-cdef --cc cc -I include -I BUILD/include \\
        --header include/tensorbridge/tensorbridge.h ... [--lib libtensorbridge.so --nm nm]

Four checks, each failing the test on its own:

1. The cdef is plain, self-contained C: it compiles alone after <stdbool.h>,
   <stddef.h> and <stdint.h> (-std=c11 -pedantic-errors -Werror).
2. Everything it declares matches the headers, at compile time: a C file
   includes <tensorbridge/tensorbridge.h> and <tensorbridge/backend.h>, then
   the cdef itself with every name it declares prefixed cdef_, then one
   _Static_assert per fact:
     - every enum constant (enumerators and #define'd constants) has the
       header's value;
     - every struct has the header's size and alignment, and each field the
       header's offset, size and type (_Generic on a pointer to the field:
       a type that is only the same size fails too);
     - every enum type has the header's size;
     - every typedef names a type compatible with the header's;
     - every function has the header's prototype (_Generic on &function:
       C's compatibility rules, so int32_t for int64_t, a missing
       parameter, a wrong return type all fail).
   It is compiled twice: as a user's compiler sees the headers (with the
   system's dlpack.h where there is one) and with dlpack_abi.h's own DLPack
   declarations (-DDLPACK_DLPACK_H_= hides the system header).
3. Nothing is missing: an independent scan of the headers' text (regular
   expressions, not gen-cdef's parser) lists every TB_API function, every
   enumerator, every object-like TB_*/DLPACK_* #define with a body, every
   typedef and struct tag; each must be in the cdef. With --lib, the
   functions the shared library exports (nm -D --defined-only) must be
   exactly the cdef's functions.
4. Every type is spelled as the headers spell it: gen-cdef's own reading of
   the headers (its preprocessor and parser, so after our macro expansion:
   the -I folders, the roots of --root) against the cdef, each type written
   out in gen-cdef's canonical form and compared token for token (so
   whitespace, parameter names and where `const` stands do not matter, nor
   `unsigned` for `unsigned int`): every function's return and parameter
   types, every struct/union field's type (fields by name, in order), every
   typedef's target. Check 2 compares types as this compiler sees them, and
   on 64-bit Linux uint64_t is size_t, int64_t is intptr_t and an enum is
   unsigned int; a cdef that said so would pass it and be wrong on 32-bit
   targets (and scripts/gen-rust-ffi would write u64 for usize).
"""

import argparse
import importlib.machinery
import importlib.util
import os
import re
import subprocess
import sys
import tempfile

# #define'd names that are not integer constants, so not in the cdef.
NOT_CONSTANTS = {
    "TB_API": "an attribute",
    "TB_VERSION_STRING": "a string (tb_version() returns it)",
    "TB_DLPACK_SYSTEM_VERSION": "the version of the system dlpack.h a compiler finds",
}
PREFIX = "cdef_"
# The headers check 2 includes, read by gen-cdef as the build does
# (include/tensorbridge/meson.build).
ROOTS = ["tensorbridge/tensorbridge.h", "tensorbridge/backend.h"]


def load_gen_cdef(path):
    loader = importlib.machinery.SourceFileLoader("gen_cdef", path)
    spec = importlib.util.spec_from_loader("gen_cdef", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def c_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def c_int(v):
    if v > 0x7FFFFFFFFFFFFFFF:
        return f"{v}ULL"
    return f"({v})" if v < 0 else str(v)


def renamed_cdef(g, path, names):
    """The cdef's own text with every name it declares prefixed."""
    with open(path, encoding="utf-8") as f:
        text = g.strip_comments(f.read())
    out = []
    for lineno, line in enumerate(text.split("\n"), 1):
        toks = g.tokenize(line, f"cdef:{lineno}")
        if toks:
            out.append(" ".join(PREFIX + t.text if t.kind == "id" and t.text in names
                                else t.text for t in toks))
    return "\n".join(out)


def assertions(g, decls):
    """_Static_assert lines, one per fact, and a count per kind."""
    lines, counts = [], {"constants": 0, "structs": 0, "fields": 0, "enums": 0,
                         "typedefs": 0, "functions": 0}

    def check(cond, what):
        lines.append(f"_Static_assert({cond}, {c_string('cdef: ' + what)});")

    def same_type(expr, t):
        return f"_Generic({expr}, {g.render(g.Ptr(t))}: 1, default: 0)"

    lines.append("/* enum constants */")
    for name, value in decls.constants():
        check(f"({name}) == {c_int(value)}", f"{name}: the cdef says {value}, the header differs")
        counts["constants"] += 1
    lines.append("/* structs, unions and enum types */")
    for rec, typedef in decls.records():
        if rec.tag is None and typedef is None:
            continue  # an anonymous enum of constants (checked above)
        real = f"{rec.kind} {rec.tag}" if rec.tag else typedef
        mine = f"{rec.kind} {PREFIX}{rec.tag}" if rec.tag else PREFIX + typedef
        label = rec.tag or typedef
        check(f"sizeof({real}) == sizeof({mine})", f"sizeof({label}) differs")
        if rec.kind == "enum":
            counts["enums"] += 1
            continue
        counts["structs"] += 1
        check(f"_Alignof({real}) == _Alignof({mine})", f"_Alignof({label}) differs")
        for fname, ftype in rec.body:
            counts["fields"] += 1
            check(f"offsetof({real}, {fname}) == offsetof({mine}, {fname})",
                  f"offset of {label}.{fname} differs")
            check(f"sizeof((({real} *)0)->{fname}) == sizeof((({mine} *)0)->{fname})",
                  f"size of {label}.{fname} differs")
            check(same_type(f"&(({real} *)0)->{fname}", ftype),
                  f"type of {label}.{fname} differs: the cdef says {g.render(ftype, fname)}")
    lines.append("/* typedefs */")
    for name, t in decls.typedefs():
        counts["typedefs"] += 1
        if isinstance(t, g.Record):
            if t.tag is not None:
                check(f"_Generic(({name} *)0, {t.kind} {t.tag} *: 1, default: 0)",
                      f"typedef {name} is not {t.kind} {t.tag}")
            continue  # an anonymous struct or enum: its layout is checked above
        check(same_type(f"({name} *)0", t), f"typedef {name} differs: the cdef says "
              f"{g.render(t, name)}")
        if not isinstance(t, g.Func):
            check(f"sizeof({name}) == sizeof({PREFIX}{name})", f"sizeof({name}) differs")
    lines.append("/* functions */")
    for name, f in decls.functions():
        counts["functions"] += 1
        check(same_type(f"&{name}", f), f"prototype of {name} differs: the cdef says "
              f"{g.render(f, name)}")
    return lines, counts


def bare(g, t):
    """t without parameter names or struct/union/enum bodies: only what its
    spelling says (a body is compared field by field on its own)."""
    if isinstance(t, g.Ptr):
        return g.Ptr(bare(g, t.to), t.const)
    if isinstance(t, g.Arr):
        return g.Arr(bare(g, t.of), t.n)
    if isinstance(t, g.Func):
        return g.Func(bare(g, t.ret), [(None, bare(g, pt)) for _, pt in t.params], t.variadic)
    if isinstance(t, g.Record) and t.body is not None:
        return g.Record(t.kind, t.tag, None, t.const)
    return t


def spelling(g, t):
    """t as C text in gen-cdef's canonical form, and that text with its
    whitespace normalised (one space between tokens), to compare."""
    text = g.render(bare(g, t))
    return text, " ".join(tok.text for tok in g.tokenize(text, "spelling"))


def bodies(g, t):
    """The struct/union bodies written out inside t, in order."""
    if isinstance(t, g.Ptr):
        return bodies(g, t.to)
    if isinstance(t, g.Arr):
        return bodies(g, t.of)
    if isinstance(t, g.Func):
        return bodies(g, t.ret) + [b for _, pt in t.params for b in bodies(g, pt)]
    if isinstance(t, g.Record) and t.body is not None and t.kind != "enum":
        return [t]
    return []


def spelling_mismatches(g, header, cdef):
    """Check 4: each declaration's types as the headers spell them (gen-cdef's
    reading, header) against the cdef's (cdef). Returns the mismatches and the
    number of types compared."""
    problems, compared = [], 0

    def same(label, ht, ct, top=False):
        nonlocal compared
        compared += 1
        (hs, hn), (cs, cn) = spelling(g, ht), spelling(g, ct)
        if hn != cn:
            problems.append(f"{label}: the header says `{hs}`, the cdef says `{cs}`")
            return
        if top and isinstance(ht, g.Record):
            return  # a typedef's own struct: its fields are compared with the records
        for k, (hb, cb) in enumerate(zip(bodies(g, ht), bodies(g, ct))):
            fields(f"{label} (nested {hb.kind} {k + 1})", hb, cb)

    def fields(label, hrec, crec):
        hnames, cnames = [n for n, _ in hrec.body], [n for n, _ in crec.body]
        if hnames != cnames:
            problems.append(f"{label}: the header's fields are {', '.join(hnames)}; the cdef's "
                            f"are {', '.join(cnames)}")
        ctypes = dict(crec.body)
        for fname, ftype in hrec.body:
            if fname in ctypes:
                same(f"{label}.{fname}", ftype, ctypes[fname])

    def record_key(rec, typedef):
        return (rec.kind, rec.tag) if rec.tag else ("typedef", typedef)

    def record_label(key):
        return key[1] if key[0] == "typedef" else f"{key[0]} {key[1]}"

    def by_name(pairs):
        return {n: t for n, t in pairs}

    # Functions: the return type, then each parameter by position.
    hf, cf = by_name(header.functions()), by_name(cdef.functions())
    for name, f in hf.items():
        c = cf.get(name)
        if c is None:
            problems.append(f"{name}: a function of the headers, not in the cdef")
            continue
        same(f"{name}: return type", f.ret, c.ret)
        if len(f.params) != len(c.params) or f.variadic != c.variadic:
            problems.append(f"{name}: the header says `{g.render(f, name)}`, the cdef says "
                            f"`{g.render(c, name)}`")
        for k, ((pname, pt), (_, ct)) in enumerate(zip(f.params, c.params), 1):
            same(f"{name}: parameter {k}" + (f" ({pname})" if pname else ""), pt, ct)
    for name in cf.keys() - hf.keys():
        problems.append(f"{name}: a function of the cdef, not in the headers")

    # Typedefs: the target (a struct's fields below, with the records).
    ht, ct = by_name(header.typedefs()), by_name(cdef.typedefs())
    for name, t in ht.items():
        if name not in ct:
            problems.append(f"typedef {name}: in the headers, not in the cdef")
        else:
            same(f"typedef {name}", t, ct[name], top=True)
    for name in ct.keys() - ht.keys():
        problems.append(f"typedef {name}: in the cdef, not in the headers")

    # Structs and unions with a body: each field's type.
    def struct_bodies(decls):
        return {record_key(r, t): r for r, t in decls.records()
                if r.kind != "enum" and (r.tag or t)}
    hr, cr = struct_bodies(header), struct_bodies(cdef)
    for key, rec in hr.items():
        if key not in cr:
            problems.append(f"{record_label(key)}: a body in the headers, none in the cdef")
        else:
            fields(record_label(key), rec, cr[key])
    for key in cr.keys() - hr.keys():
        problems.append(f"{record_label(key)}: a body in the cdef, none in the headers")
    return problems, compared


def scan_headers(g, paths):
    """What the headers' text declares, found without gen-cdef's parser."""
    found = {"functions": set(), "constants": set(), "enumerators": set(), "typedefs": set(),
             "tags": set()}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = g.strip_comments(f.read())
        for m in re.finditer(r"^[ \t]*#[ \t]*define[ \t]+(\w+)(\(?)(.*)$", text, re.M):
            name, function_like, body = m.groups()
            if function_like or not body.strip() or name in NOT_CONSTANTS:
                continue
            if name.startswith(("TB_", "DLPACK_")):
                found["constants"].add(name)
        code = re.sub(r"^[ \t]*#.*$", "", text, flags=re.M)
        for m in re.finditer(r"\bTB_API\b[^;{}]*?\b([A-Za-z_]\w*)\s*\(", code):
            found["functions"].add(m.group(1))
        for m in re.finditer(r"\benum\b\s*\w*\s*\{([^}]*)\}", code):
            for part in m.group(1).split(","):
                e = re.match(r"\s*([A-Za-z_]\w*)", part)
                if e:
                    found["enumerators"].add(e.group(1))
        for m in re.finditer(r"\b(?:struct|union)\s+([A-Za-z_]\w*)\s*\{", code):
            found["tags"].add(m.group(1))
        for m in re.finditer(r"\btypedef\b", code):
            depth, i = 0, m.end()
            while i < len(code) and not (code[i] == ";" and depth == 0):
                depth += {"{": 1, "}": -1}.get(code[i], 0)
                i += 1
            tail = code[m.end():i].rsplit("}", 1)[-1]
            fp = re.search(r"\(\s*\*\s*([A-Za-z_]\w*)\s*\)", tail)
            names = re.findall(r"[A-Za-z_]\w*", re.sub(r"\[[^\]]*\]", "", tail))
            if fp:
                found["typedefs"].add(fp.group(1))
            elif names:
                found["typedefs"].add(names[-1])
    return found


def exported_symbols(nm, lib):
    out = subprocess.run([nm, "-D", "--defined-only", lib], capture_output=True, text=True,
                         check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] not in ("A", "a") and parts[1].isupper():
            names.add(parts[2].split("@")[0])
    return names


def compile_c(cc, flags, source, label, keep):
    path = os.path.join(keep, label + ".c")
    with open(path, "w", encoding="utf-8") as f:
        f.write(source)
    cmd = cc + ["-std=c11", "-pedantic-errors", "-Wall", "-Wextra", "-Werror", "-fsyntax-only"] \
        + flags + [path]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        lines = (run.stdout + run.stderr).splitlines()
        shown = [ln for ln in lines if "error" in ln][:40] or lines[:40]
        print(f"FAIL {label}: {' '.join(cmd)}\n  " + "\n  ".join(shown), file=sys.stderr)
        return False
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cdef", required=True)
    ap.add_argument("--gen-cdef", required=True, help="scripts/gen-cdef (its parser is reused)")
    ap.add_argument("--cc", action="append", required=True,
                    help="the C compiler command, one word per --cc")
    ap.add_argument("-I", dest="include_dirs", action="append", default=[])
    ap.add_argument("--header", action="append", default=[],
                    help="a public header, for the independent scan")
    ap.add_argument("--root", action="append",
                    help="a root header for check 4, relative to an -I folder (default: "
                    + ", ".join(ROOTS) + ")")
    ap.add_argument("--lib", help="the shared library, to compare its exported symbols")
    ap.add_argument("--nm", default="nm")
    ap.add_argument("--keep", help="write the generated C files into this folder")
    args = ap.parse_args(argv)

    g = load_gen_cdef(args.gen_cdef)
    decls = g.read_declarations(args.cdef)
    names = set()
    for name, _ in decls.typedefs() + decls.functions() + decls.constants():
        names.add(name)
    for item in decls.items:
        for t in ([item[1]] if item[0] == "record" else [item[2]] if item[0] == "typedef" else []):
            if isinstance(t, g.Record) and t.tag:
                names.add(t.tag)
    keep = args.keep or tempfile.mkdtemp(prefix="cdef_check.")
    os.makedirs(keep, exist_ok=True)
    includes = [f"-I{d}" for d in args.include_dirs]
    ok = True

    # 1. Plain, self-contained C.
    with open(args.cdef, encoding="utf-8") as f:
        alone = ("#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n\n"
                 + f.read())
    ok &= compile_c(args.cc, [], alone, "cdef_alone", keep)

    # 2. The same as the headers.
    lines, counts = assertions(g, decls)
    source = "\n".join([
        "/* Generated by tests/cdef_check.py: the cdef (names prefixed " + PREFIX + ")",
        " * against the headers. */",
        "#include <stddef.h>",
        "#include <tensorbridge/tensorbridge.h>",
        "#include <tensorbridge/backend.h>",
        "",
        renamed_cdef(g, args.cdef, names),
        "",
    ] + lines) + "\n"
    ok &= compile_c(args.cc, includes, source, "cdef_vs_headers", keep)
    ok &= compile_c(args.cc, includes + ["-DDLPACK_DLPACK_H_="], source,
                    "cdef_vs_headers_own_dlpack", keep)

    # 3. Complete.
    cdef_functions = {n for n, _ in decls.functions()}
    cdef_types = {n for n, _ in decls.typedefs()}
    cdef_constants = {n for n, _ in decls.constants()}
    cdef_tags = {r.tag for r, _ in decls.records() if r.tag}
    found = scan_headers(g, args.header)
    missing = {
        "functions": found["functions"] - cdef_functions,
        "constants": found["constants"] - cdef_constants,
        "enumerators": found["enumerators"] - cdef_constants,
        "typedefs": found["typedefs"] - cdef_types,
        "struct tags": found["tags"] - cdef_tags,
    }
    for what, names_missing in missing.items():
        if names_missing:
            ok = False
            print(f"FAIL: {what} of the headers missing from the cdef: "
                  + ", ".join(sorted(names_missing)), file=sys.stderr)
    extra = cdef_functions - found["functions"]
    if extra:
        ok = False
        print("FAIL: functions in the cdef that no header declares with TB_API: "
              + ", ".join(sorted(extra)), file=sys.stderr)
    exported = None
    if args.lib:
        exported = exported_symbols(args.nm, args.lib)
        if exported - cdef_functions:
            ok = False
            print(f"FAIL: exported by {os.path.basename(args.lib)} but not in the cdef: "
                  + ", ".join(sorted(exported - cdef_functions)), file=sys.stderr)
        if cdef_functions - exported:
            ok = False
            print(f"FAIL: in the cdef but not exported by {os.path.basename(args.lib)}: "
                  + ", ".join(sorted(cdef_functions - exported)), file=sys.stderr)

    # 4. Spelled as in the headers.
    spelled = 0
    try:
        header_decls, _ = g.read_headers(args.root or ROOTS, args.include_dirs)
    except g.Error as e:
        ok = False
        print(f"FAIL: gen-cdef cannot read the headers: {e}", file=sys.stderr)
    else:
        problems, spelled = spelling_mismatches(g, header_decls, decls)
        if problems:
            ok = False
            print(f"FAIL: {len(problems)} type(s) of the cdef not spelled as in the headers "
                  "(the same type on this target is not enough):\n  "
                  + "\n  ".join(problems), file=sys.stderr)

    if not ok:
        print(f"cdef check FAILED (generated C in {keep})", file=sys.stderr)
        return 1
    print(f"cdef check: {counts['constants']} constants, {counts['structs']} structs "
          f"({counts['fields']} fields), {counts['enums']} enum types, {counts['typedefs']} "
          f"typedefs and {counts['functions']} functions match the headers (compiled twice: "
          "system dlpack.h and dlpack_abi.h's own); nothing of the headers is missing"
          + (f"; the {len(exported)} exported symbols are the cdef's functions"
             if exported is not None else " (exported symbols not compared: no --lib)")
          + f"; all {spelled} types are spelled as in the headers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
