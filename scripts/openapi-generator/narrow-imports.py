#!/usr/bin/env python3
"""Makes each generated file's `public import` internal where the file's own code does not
use the imported module's names. swift-openapi-generator silences the resulting
"public import … was not used" warnings only on Swift 6.4 and later; this keeps the build
warning-free on 6.3 without touching what the files declare.

Usage: narrow-imports.py RUNTIME_SOURCES FILE...
"""
import pathlib
import re
import sys

runtime = pathlib.Path(sys.argv[1])
declared = re.compile(r"public\s+(?:final\s+)?(?:struct|enum|protocol|class|actor|typealias)\s+([A-Za-z_][A-Za-z0-9_]*)")
runtime_names = {name for source in runtime.rglob("*.swift") for name in declared.findall(source.read_text())}

for path in map(pathlib.Path, sys.argv[2:]):
    lines = path.read_text().split("\n")
    code = "\n".join(line for line in lines if "import " not in line and not line.lstrip().startswith("//"))
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code))
    # One file's imports of one module share an access level: Foundation's structs go together.
    foundation = re.findall(r"public import struct Foundation\.(\w+)", "\n".join(lines))
    foundation_used = any(name in words for name in foundation)
    out = []
    for line in lines:
        match = re.match(r"^(@_spi\(Generated\) )?public import (struct Foundation\.\w+|OpenAPIRuntime)$", line)
        if match:
            used = foundation_used if match.group(2).startswith("struct") else bool(words & runtime_names)
            if not used:
                line = line.replace("public import", "internal import")
        out.append(line)
    path.write_text("\n".join(out))
