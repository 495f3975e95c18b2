#!/usr/bin/env python3
"""tests/manifests_test.py [--root DIR] -- the build manifests against the tree.

The Zephyr module (zephyr/module.yml, zephyr/CMakeLists.txt, zephyr/Kconfig),
the ESP-IDF component (idf_component.yml, cmake/esp_idf.cmake, Kconfig), the
PlatformIO library.json and, when present, the top-level CMakeLists.txt
cannot be built here; this checks what can be checked without their tools:
  - every source file a manifest lists (or a pattern of it matches) exists,
    and every core/*.c is built by each manifest;
  - every KL_ENABLE_* switch of include/ has a Kconfig option with the same
    default (Zephyr's, and ESP-IDF's), and one compile definition in the
    CMake that reads it; KL_RX_BUF_SIZE / KL_TX_BUF_SIZE likewise;
  - the versions agree (idf_component.yml, library.json, VERSION if present).
Prints PASS/FAIL lines and "check-manifests: N passed, N failed"; exit 1 on a
failure. Python 3 standard library only.
"""
import argparse
import fnmatch
import json
import os
import re
import sys

results = {"pass": 0, "fail": 0}


def check(cond, what):
    results["pass" if cond else "fail"] += 1
    print(("PASS " if cond else "FAIL ") + what)
    return cond


def read(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        return f.read()


def tree_files(root, top):
    out = []
    for d, dirs, files in os.walk(os.path.join(root, top)):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for f in files:
            out.append(os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/"))
    return sorted(out)


def core_sources(root):
    return sorted(f for f in tree_files(root, "core") if f.endswith(".c") and f.count("/") == 1)


def header_switches(root):
    """{'KL_ENABLE_X': default, ...} and the buffer sizes, from include/."""
    switches, sizes = {}, {}
    for f in tree_files(root, "include"):
        if not f.endswith(".h"):
            continue
        text = read(root, f)
        for m in re.finditer(r"#ifndef\s+(KL_ENABLE_\w+)\s*\n\s*#define\s+\1\s+(\S+)", text):
            switches[m.group(1)] = int(m.group(2).rstrip("uU"))
        for m in re.finditer(r"#ifndef\s+(KL_[RT]X_BUF_SIZE)\s*\n\s*#define\s+\1\s+(\S+)", text):
            sizes[m.group(1)] = int(m.group(2).rstrip("uU"))
    return switches, sizes


def strip_cmake_comments(text):
    return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())


def cmake_paths(text, prefixes):
    """Relative paths of .c files and globs in CMake text: bare relative
    paths, or ${VAR}/path for VAR in prefixes (the module's root); paths
    under other variables (an external source tree) are not ours."""
    out = []
    for tok in re.findall(r"[^\s()\"]+\.c\b", strip_cmake_comments(text)):
        m = re.match(r"\$\{(\w+)\}/(.*)$", tok)
        if m:
            if m.group(1) in prefixes:
                out.append(m.group(2))
        elif "$" not in tok:
            out.append(tok)
    return out


def check_source_list(root, name, paths):
    """paths: relative files or globs; all must exist/match, core covered."""
    check(len(paths) > 0, f"{name}: lists sources")
    covered = set()
    for p in paths:
        if any(c in p for c in "*?["):
            hits = [f for f in tree_files(root, p.split("/")[0]) if fnmatch.fnmatchcase(f, p)]
            check(len(hits) > 0, f"{name}: pattern {p} matches files")
            covered.update(hits)
        else:
            check(os.path.isfile(os.path.join(root, p)), f"{name}: {p} exists")
            covered.add(p)
    missing = [c for c in core_sources(root) if c not in covered]
    check(not missing, f"{name}: every core/*.c is built" + (f" (missing: {' '.join(missing)})" if missing else ""))
    return covered


def kconfig_options(text):
    """{name: (type, default)} of config/menuconfig entries."""
    opts = {}
    cur = None
    for line in text.splitlines():
        m = re.match(r"\s*(?:menu)?config\s+(\w+)\s*$", line)
        if m:
            cur = m.group(1)
            opts[cur] = [None, None]
            continue
        if re.match(r"\s*(if|endif|menu|endmenu|source|choice|endchoice|comment)\b", line):
            cur = None
            continue
        if cur is None:
            continue
        m = re.match(r"\s*(bool|int|string|hex|tristate)\b", line)
        if m and opts[cur][0] is None:
            opts[cur][0] = m.group(1)
        m = re.match(r"\s*default\s+(\S+)", line)
        if m and opts[cur][1] is None:
            opts[cur][1] = m.group(1)
        if re.match(r"\s*help\s*$", line):
            cur = None
    return {k: tuple(v) for k, v in opts.items()}


def check_kconfig(root, name, rel, switches, sizes):
    if not check(os.path.isfile(os.path.join(root, rel)), f"{name}: {rel} exists"):
        return
    opts = kconfig_options(read(root, rel))
    for sw, dflt in sorted(switches.items()):
        opt = "KINGLET_" + sw[len("KL_"):]
        got = opts.get(opt)
        want = "y" if dflt else "n"
        check(got is not None and got[0] == "bool" and got[1] == want,
              f"{name}: {opt} is a bool, default {want} like {sw}={dflt}" + ("" if got else " (missing)") +
              (f" (has {got[0]} default {got[1]})" if got and (got[0] != "bool" or got[1] != want) else ""))
    extra = sorted(o for o in opts if o.startswith("KINGLET_ENABLE_") and "KL_" + o[len("KINGLET_"):] not in switches)
    check(not extra, f"{name}: no KINGLET_ENABLE_* option without a header switch" + (f" ({' '.join(extra)})" if extra else ""))
    for sz, dflt in sorted(sizes.items()):
        opt = "KINGLET_" + sz[len("KL_"):]
        got = opts.get(opt)
        check(got is not None and got[0] == "int" and got[1] == str(dflt),
              f"{name}: {opt} is an int, default {dflt} like {sz}" +
              ("" if got == ("int", str(dflt)) else f" (has {got})" if got else " (missing)"))


def yaml_scalar(text, key):
    """A top-level `key: value` of a simple YAML file (quotes stripped)."""
    m = re.search(r"^" + re.escape(key) + r":\s*(.*?)\s*$", text, re.M)
    if not m:
        return None
    v = re.sub(r"\s+#.*$", "", m.group(1))
    return v.strip("\"'")


def yaml_nested(text, parent, key):
    m = re.search(r"^" + re.escape(parent) + r":\s*\n((?:[ \t]+.*\n?)*)", text, re.M)
    if not m:
        return None
    m2 = re.search(r"^[ \t]+" + re.escape(key) + r":\s*(.*?)\s*$", m.group(1), re.M)
    return m2.group(1).strip("\"'") if m2 else None


def platformio_select(root, src_dir, filters):
    """PlatformIO's srcFilter: +<pat> / -<pat> applied in order, relative to
    srcDir; a pattern naming a directory means everything under it."""
    base = os.path.normpath(os.path.join(root, src_dir))
    every = []
    for d, dirs, files in os.walk(base):
        dirs[:] = [x for x in dirs if not x.startswith(".") and not x.startswith("build") and x != "third_party"]
        for f in files:
            every.append(os.path.relpath(os.path.join(d, f), base).replace(os.sep, "/"))
    chosen = set()
    toks = re.findall(r"([+-])<([^>]*)>", " ".join(filters) if isinstance(filters, list) else filters)
    for sign, pat in toks:
        pat = pat.rstrip("/")
        hits = {f for f in every if fnmatch.fnmatchcase(f, pat) or f.startswith(pat + "/") or pat == "*"}
        if sign == "+":
            check(len(hits) > 0, f"library.json: srcFilter +<{pat}> matches files")
            chosen |= hits
        else:
            chosen -= hits
    return sorted(chosen)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    root = ap.parse_args().root
    switches, sizes = header_switches(root)
    check(len(switches) > 0 and set(sizes) == {"KL_RX_BUF_SIZE", "KL_TX_BUF_SIZE"},
          f"headers: {len(switches)} KL_ENABLE_* switches, the buffer sizes found")
    names = [s[len("KL_ENABLE_"):] for s in sorted(switches)]
    mbedtls = sorted(f for f in tree_files(root, "port/mbedtls") if f.endswith(".c"))
    versions = {}

    # ---- Zephyr ----------------------------------------------------------------
    my = read(root, "zephyr/module.yml") if os.path.isfile(os.path.join(root, "zephyr/module.yml")) else ""
    check(yaml_scalar(my, "name") == "kinglet", "zephyr/module.yml: name kinglet")
    cm, kc = yaml_nested(my, "build", "cmake"), yaml_nested(my, "build", "kconfig")
    check(cm == "zephyr" and os.path.isfile(os.path.join(root, "zephyr/CMakeLists.txt")),
          "zephyr/module.yml: build.cmake zephyr (zephyr/CMakeLists.txt exists)")
    check(kc == "zephyr/Kconfig" and os.path.isfile(os.path.join(root, "zephyr/Kconfig")),
          "zephyr/module.yml: build.kconfig zephyr/Kconfig (exists)")
    zc = read(root, "zephyr/CMakeLists.txt")
    covered = check_source_list(root, "zephyr/CMakeLists.txt", cmake_paths(zc, {"KINGLET_DIR", "ZEPHYR_CURRENT_MODULE_DIR"}))
    check(all(f in covered for f in mbedtls), "zephyr/CMakeLists.txt: the mbedTLS binding's sources (port/mbedtls/*.c)")
    check(re.search(r"zephyr_library_sources_ifdef\(\s*CONFIG_KINGLET_MBEDTLS", zc) is not None,
          "zephyr/CMakeLists.txt: the mbedTLS binding only with CONFIG_KINGLET_MBEDTLS")
    check("zephyr_library()" in zc, "zephyr/CMakeLists.txt: zephyr_library()")
    for d in re.findall(r"\$\{KINGLET_DIR\}/([\w/]+)\)", zc):
        check(os.path.isdir(os.path.join(root, d)), f"zephyr/CMakeLists.txt: include directory {d} exists")
    zsw = set(re.findall(r"^\s*kinglet_zephyr_switch\((\w+)\)", strip_cmake_comments(zc), re.M))
    check(zsw == set(names), "zephyr/CMakeLists.txt: one compile definition per KL_ENABLE_* switch" +
          ("" if zsw == set(names) else f" (missing {sorted(set(names) - zsw)}, extra {sorted(zsw - set(names))})"))
    for sz in sorted(sizes):
        check(f"{sz}=${{CONFIG_KINGLET_{sz[3:]}}}" in zc, f"zephyr/CMakeLists.txt: {sz} from CONFIG_KINGLET_{sz[3:]}")
    check_kconfig(root, "zephyr/Kconfig", "zephyr/Kconfig", switches, sizes)
    zk = read(root, "zephyr/Kconfig")
    check(re.search(r"^menuconfig KINGLET\s*$", zk, re.M) is not None and "config KINGLET_MBEDTLS" in zk,
          "zephyr/Kconfig: menuconfig KINGLET, KINGLET_MBEDTLS")

    # ---- ESP-IDF -----------------------------------------------------------------
    ic = read(root, "idf_component.yml")
    versions["idf_component.yml"] = yaml_scalar(ic, "version")
    ec = read(root, "cmake/esp_idf.cmake")
    covered = check_source_list(root, "cmake/esp_idf.cmake", cmake_paths(ec, {"COMPONENT_DIR", "CMAKE_CURRENT_SOURCE_DIR"}))
    check(all(f in covered for f in mbedtls), "cmake/esp_idf.cmake: the mbedTLS binding's sources")
    reg = re.search(r"idf_component_register\(([^)]*)\)", strip_cmake_comments(ec), re.S)
    args = reg.group(1).split() if reg else []
    check(reg is not None and "PRIV_INCLUDE_DIRS" in args and args[args.index("PRIV_INCLUDE_DIRS") + 1] == "core"
          and "REQUIRES" in args and "mbedtls" in args[args.index("REQUIRES"):],
          "cmake/esp_idf.cmake: idf_component_register(... PRIV_INCLUDE_DIRS core REQUIRES mbedtls)")
    incs = re.findall(r"set\(KINGLET_IDF_INCLUDE_DIRS\s+([^)]*)\)", ec) + re.findall(r"list\(APPEND KINGLET_IDF_INCLUDE_DIRS\s+([^)]*)\)", ec)
    inc_dirs = " ".join(incs).split()
    check("include" in inc_dirs and all(os.path.isdir(os.path.join(root, d)) for d in inc_dirs + ["core"]),
          f"cmake/esp_idf.cmake: include directories exist ({' '.join(inc_dirs)}, core)")
    fe = re.search(r"foreach\(_kl_switch\s+([^)]*)\)", ec)
    esw = set(fe.group(1).split()) if fe else set()
    check(esw == set(names), "cmake/esp_idf.cmake: one compile definition per KL_ENABLE_* switch" +
          ("" if esw == set(names) else f" (missing {sorted(set(names) - esw)}, extra {sorted(esw - set(names))})"))
    for sz in sorted(sizes):
        check(f"{sz}=${{CONFIG_KINGLET_{sz[3:]}}}" in ec, f"cmake/esp_idf.cmake: {sz} from CONFIG_KINGLET_{sz[3:]}")
    if os.path.isfile(os.path.join(root, "Kconfig")):
        check_kconfig(root, "Kconfig (ESP-IDF)", "Kconfig", switches, sizes)

    # ---- PlatformIO ----------------------------------------------------------------
    lj = json.loads(read(root, "library.json"))
    versions["library.json"] = lj.get("version")
    check(lj.get("name") == "kinglet", "library.json: name kinglet")
    b = lj.get("build", {})
    chosen = platformio_select(root, b.get("srcDir", "src"), b.get("srcFilter", ["+<*>"]))
    csrc = [f for f in chosen if f.endswith(".c")]
    missing = [c for c in core_sources(root) if c not in csrc]
    check(not missing, "library.json: every core/*.c is built" + (f" (missing: {' '.join(missing)})" if missing else ""))
    stray = [f for f in csrc if not (f.startswith("core/") or f.startswith("port/"))]
    check(not stray, "library.json: builds nothing outside core/ and port/" + (f" ({' '.join(stray[:5])})" if stray else ""))
    check(all(f in csrc for f in mbedtls), "library.json: the mbedTLS binding's sources")
    check(os.path.isdir(os.path.join(root, b.get("includeDir", "include"))), f"library.json: includeDir {b.get('includeDir')} exists")
    for fl in (b.get("flags") or []):
        m = re.match(r"-I\s*(\S+)$", fl)
        if m:
            check(os.path.isdir(os.path.join(root, m.group(1))), f"library.json: flags -I {m.group(1)} exists")

    # ---- top-level CMakeLists.txt (another build; may glob) -----------------------------
    if os.path.isfile(os.path.join(root, "CMakeLists.txt")):
        tc = read(root, "CMakeLists.txt")
        check_source_list(root, "CMakeLists.txt", cmake_paths(tc, {"CMAKE_CURRENT_SOURCE_DIR", "CMAKE_CURRENT_LIST_DIR"}))
        check(re.search(r"include\(\$\{CMAKE_CURRENT_LIST_DIR\}/cmake/esp_idf\.cmake\)", tc) is not None,
              "CMakeLists.txt: includes cmake/esp_idf.cmake under ESP_PLATFORM")

    # ---- versions ------------------------------------------------------------------
    if os.path.isfile(os.path.join(root, "VERSION")):
        versions["VERSION"] = read(root, "VERSION").strip()
    vals = set(versions.values())
    check(len(vals) == 1 and None not in vals and re.match(r"^\d+\.\d+\.\d+$", next(iter(vals)) or ""),
          "versions agree: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))

    print(f"check-manifests: {results['pass']} passed, {results['fail']} failed")
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
