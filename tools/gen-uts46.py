#!/usr/bin/env python3
"""Generate Sources/PosternBase/Address/UTS46Table.swift from the UTS #46
IdnaMappingTable as shipped in the Python `idna` package (idna.uts46data).

Development time only: the build and the tests never run this script, they use
the generated Swift file, which is committed. Run it from anywhere:

    python3 tools/gen-uts46.py

Needs Python 3 and the `idna` package (pip install idna); nothing else, no
network. To move to a newer Unicode version, upgrade `idna`, run the script,
run the PosternCoreTests and commit the regenerated file.

Table layout (see UTS46.swift for the lookup):
  rangeStarts[i]   first code point of range i (ranges are contiguous and sorted;
                   range i ends where range i+1 starts)
  rangeValues[i]   status in bits 0-2 (0 valid, 1 mapped, 2 deviation,
                   3 ignored, 4 disallowed), mapping length in bits 3-7,
                   offset into mappingScalars in bits 8-31
  mappingScalars   the mappings of all "mapped" ranges, concatenated (identical
                   mappings are stored once)
Deviation mappings are not stored: Postern uses non-transitional processing
(UTS #46 section 4, step 1), which leaves deviation characters unchanged.
"""

import os
import sys

import idna
import idna.uts46data

STATUS = {"V": 0, "M": 1, "D": 2, "I": 3, "X": 4}
STATUS_NAMES = ["valid", "mapped", "deviation", "ignored", "disallowed"]
PER_LINE = 10


def build():
    rows = []  # (start, status, mapping or None)
    for row in idna.uts46data.uts46data:
        start, letter = row[0], row[1]
        if letter not in STATUS:
            sys.exit(f"unknown status {letter!r} at U+{start:04X}: this script knows "
                     f"only {sorted(STATUS)} (UTS #46 for Unicode 16.0 and later)")
        status = STATUS[letter]
        mapping = row[2] if letter == "M" else None
        if letter == "M" and not mapping:
            sys.exit(f"mapped range at U+{start:04X} has no mapping")
        # Merge a range into the previous one when nothing distinguishes them.
        if rows and mapping is None and rows[-1][1] == status and rows[-1][2] is None:
            continue
        rows.append((start, status, mapping))
    if rows[0][0] != 0:
        sys.exit("the table does not start at U+0000")
    for (a, _, _), (b, _, _) in zip(rows, rows[1:]):
        if not a < b:
            sys.exit(f"ranges not sorted at U+{b:04X}")

    scalars = []
    offsets = {}
    values = []
    for start, status, mapping in rows:
        if mapping is None:
            values.append(status)
            continue
        if mapping not in offsets:
            offsets[mapping] = len(scalars)
            scalars.extend(ord(c) for c in mapping)
        offset, length = offsets[mapping], len(mapping)
        assert length < 32 and offset < (1 << 24)
        values.append(offset << 8 | length << 3 | status)
    return [r[0] for r in rows], values, scalars


def swift_array(name, doc, numbers, width):
    lines = [f"    /// {doc}", f"    static let {name}: [UInt32] = ["]
    for i in range(0, len(numbers), PER_LINE):
        chunk = numbers[i:i + PER_LINE]
        lines.append("        " + ", ".join(f"0x{n:0{width}X}" for n in chunk) + ",")
    lines.append("    ]")
    return "\n".join(lines)


def main():
    starts, values, scalars = build()
    version = idna.uts46data.__version__
    out = [
        "// GENERATED FILE, do not edit. Written by tools/gen-uts46.py from the",
        f"// UTS #46 IdnaMappingTable for Unicode {version}, as shipped in the Python",
        f"// package idna {idna.__version__} (idna.uts46data). To regenerate (Python 3 with",
        "// the idna package, no network): python3 tools/gen-uts46.py",
        "",
        f"/// The UTS #46 IdnaMappingTable (Unicode {version}) in compact form; `UTS46`",
        "/// reads it. Ranges are sorted and contiguous: range i covers",
        "/// `rangeStarts[i] ..< rangeStarts[i + 1]` (the last one up to U+10FFFF).",
        "/// `rangeValues[i]` holds the status in bits 0-2 (0 valid, 1 mapped,",
        "/// 2 deviation, 3 ignored, 4 disallowed) and, for mapped ranges, the length",
        "/// (bits 3-7) and offset (bits 8-31) of the mapping in `mappingScalars`.",
        "/// Deviation mappings are left out: Postern processes non-transitionally.",
        "enum UTS46Table {",
        f"    /// The Unicode version of the IdnaMappingTable this file was made from.",
        f"    static let unicodeVersion = \"{version}\"",
        "",
        swift_array("rangeStarts", f"First code point of each of the {len(starts)} ranges.", starts, 5),
        "",
        swift_array("rangeValues", "Status, mapping length and mapping offset of each range.", values, 6),
        "",
        swift_array("mappingScalars", f"The {len(scalars)} scalars of all mappings, concatenated.", scalars, 5),
        "}",
        "",
    ]
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "Sources", "PosternBase", "Address", "UTS46Table.swift")
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("\n".join(out))
    print(f"wrote {os.path.normpath(path)}: {len(starts)} ranges, {len(scalars)} mapping scalars, "
          f"Unicode {version}", file=sys.stderr)


if __name__ == "__main__":
    main()
