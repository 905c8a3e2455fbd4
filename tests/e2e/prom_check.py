#!/usr/bin/env python3
"""prom_check.py FILE [SAMPLE...] - checks FILE against the Prometheus text
exposition format (0.0.4) as sessstore-metrics writes it, then prints the
value of each SAMPLE (e.g. 'sessstore_loads_total{result="hit"}'), one a
line. Exits 1 with a message on the first violation or a missing sample.

Checked: HELP and TYPE once per family, before its samples; types counter,
gauge or histogram; names sessstore_*, counters ending in _total; label
syntax and escapes; numeric values; histograms with cumulative buckets,
le="+Inf" equal to _count, and _sum."""
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    r"^(%s)(\{(?:%s)(?:,%s)*\})? ([^ ]+)$" % (NAME, LABEL, LABEL))
LABELS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def fail(msg):
    print("prom_check: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    text = open(sys.argv[1]).read()
    if not text.endswith("\n"):
        fail("the text does not end with a newline")
    helps, types, values = {}, {}, {}
    hist = {}  # (family, labels without le) -> {"buckets": [(le, v)], "count": v, "sum": v}
    for n, line in enumerate(text.splitlines(), 1):
        where = "line %d: %r" % (n, line)
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            if name in helps:
                fail(where + ": second HELP")
            helps[name] = True
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram"):
                fail(where + ": bad TYPE")
            if parts[2] in types:
                fail(where + ": second TYPE")
            if parts[2] not in helps:
                fail(where + ": TYPE before HELP")
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#") or not line:
            fail(where + ": unexpected line")
        m = SAMPLE.match(line)
        if not m:
            fail(where + ": not a sample")
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        try:
            v = float(value)
        except ValueError:
            fail(where + ": value is not a number")
        if not name.startswith("sessstore_"):
            fail(where + ": name without the sessstore_ prefix")
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and types.get(base) == "histogram":
                family = base
        if family not in types:
            fail(where + ": sample before its TYPE")
        if types[family] == "counter" and not name.endswith("_total"):
            fail(where + ": counter not named *_total")
        if types[family] == "counter" and v < 0:
            fail(where + ": negative counter")
        if line.split(" ")[0] in values:
            fail(where + ": sample repeated")
        values[line.rsplit(" ", 1)[0]] = value
        if types[family] == "histogram":
            ls = dict(LABELS.findall(labels))
            le = ls.pop("le", None)
            key = (family, tuple(sorted(ls.items())))
            h = hist.setdefault(key, {"buckets": []})
            if name.endswith("_bucket"):
                if le is None:
                    fail(where + ": bucket without le")
                h["buckets"].append((float(le), v))
            else:
                h[name[len(family) + 1:]] = v
    for key, h in hist.items():
        b = h["buckets"]
        if not b or b[-1][0] != float("inf"):
            fail("%s: no le=\"+Inf\" bucket last" % (key,))
        if any(b[i][0] >= b[i + 1][0] or b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            fail("%s: buckets not increasing and cumulative" % (key,))
        if "count" not in h or "sum" not in h or h["count"] != b[-1][1]:
            fail("%s: _count missing or not the +Inf bucket" % (key,))
    for sample in sys.argv[2:]:
        if sample not in values:
            fail("no sample %s" % sample)
        print(values[sample])


main()
