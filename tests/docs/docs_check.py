#!/usr/bin/env python3
"""check-docs helpers (tests/docs/docs_test.sh). Each prints PASS/FAIL lines.

  reference XMLDIR HTMLDIR   the generated reference has a page for every
                             function declared in include/kinglet/*.h, for
                             kl_client_t, kl_session_t, kl_cache_t and every
                             kl_*_ops_t
  names FILE...              every kl_* / KL_* identifier and every kl_*.[ch]
                             file the documents name exists in the tree
"""
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET

HEADERS = sorted(glob.glob('include/kinglet/*.h'))
# A declaration at file level: a return type, then kl_name( (function
# pointers, "(*kl_x)(", and comment lines, " * kl_x(", do not match).
DECL = re.compile(r'^(?:extern\s+|static\s+inline\s+)?[a-z_][a-z0-9_ ]*?[\s*]+(kl_[a-z0-9_]+)\s*\(')


def declared_functions():
    names = {}
    for h in HEADERS:
        for no, line in enumerate(open(h, encoding='utf-8'), 1):
            m = DECL.match(line)
            if m and not line.startswith('typedef'):
                names.setdefault(m.group(1), '%s:%d' % (h, no))
    return names


def ops_types():
    text = ''.join(open(h, encoding='utf-8').read() for h in HEADERS)
    return sorted(set(re.findall(r'\}\s*(kl_[a-z0-9_]+_ops_t)\s*;', text)))


def html_has(htmldir, refid, compound):
    # compounds: refid.html; members: <compound>_1<anchor> -> compound.html#anchor
    if compound:
        return os.path.isfile(os.path.join(htmldir, refid + '.html'))
    page, _, anchor = refid.rpartition('_1')
    path = os.path.join(htmldir, page + '.html')
    return os.path.isfile(path) and ('id="%s"' % anchor) in open(path, encoding='utf-8').read()


def reference(xmldir, htmldir):
    index = ET.parse(os.path.join(xmldir, 'index.xml')).getroot()
    structs, funcs = {}, {}
    for comp in index.findall('compound'):
        if comp.get('kind') == 'struct':
            structs[comp.findtext('name')] = comp.get('refid')
        for mem in comp.findall('member'):
            if mem.get('kind') == 'function':
                funcs.setdefault(mem.findtext('name'), mem.get('refid'))
    ok = True
    types = ['kl_client_t', 'kl_session_t', 'kl_cache_t'] + ops_types()
    if len(types) < 5:
        print('FAIL expected at least two kl_*_ops_t in the headers, found %s' % types[3:])
        ok = False
    for t in types:
        if t in structs and html_has(htmldir, structs[t], True):
            print('PASS reference: page for %s' % t)
        else:
            print('FAIL reference: no page for %s' % t)
            ok = False
    decl = declared_functions()
    missing = [n for n in sorted(decl) if not (n in funcs and html_has(htmldir, funcs[n], False))]
    if len(decl) < 50:
        print('FAIL reference: only %d declarations found in include/kinglet/*.h' % len(decl))
    elif missing:
        for n in missing:
            print('FAIL reference: %s (%s) has no entry' % (n, decl[n]))
    else:
        print('PASS reference: all %d functions declared in include/kinglet/*.h have an entry' % len(decl))
    return ok and not missing


def tree_words():
    words = set()
    for root in ('include', 'port'):
        for dirpath, _, files in os.walk(root):
            for f in files:
                if f.endswith(('.h', '.c', '.ld', '.md')):
                    text = open(os.path.join(dirpath, f), encoding='utf-8', errors='replace').read()
                    words.update(re.findall(r'\b[kK][lL]_[A-Za-z0-9_]+\b', text))
    return words


def tree_files():
    out = set()
    for root in ('include', 'core', 'port', 'examples', 'tests'):
        for dirpath, _, files in os.walk(root):
            out.update(files)
    return out


def names(paths):
    words, files = tree_words(), tree_files()
    ok = True
    for p in paths:
        text = open(p, encoding='utf-8').read()
        bad = set()
        seen = 0
        for m in re.finditer(r'\b(kl_[a-z0-9_]+(?:\.[ch]\b)?|KL_[A-Z0-9_]+)', text):
            tok = m.group(1)
            seen += 1
            if tok.endswith(('.c', '.h')):
                if tok not in files and tok not in words and tok[:-2] not in words:
                    bad.add(tok)
            elif tok.endswith('_'):
                # a family, KL_ENABLE_* or kl_*_ops_t: some name must have the prefix
                if text[m.end():m.end() + 1] != '*' or not any(w.startswith(tok) for w in words):
                    bad.add(tok)
            elif tok not in words:
                bad.add(tok)
        if bad:
            print('FAIL %s names what include/ and port/ do not have: %s' % (p, ' '.join(sorted(bad))))
            ok = False
        else:
            print('PASS %s: all %d kl_/KL_ names exist in include/ or port/' % (p, seen))
    return ok


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'reference':
        r = reference(sys.argv[2], sys.argv[3])
    elif cmd == 'names':
        r = names(sys.argv[2:])
    else:
        sys.exit('usage: docs_check.py reference XMLDIR HTMLDIR | names FILE...')
    sys.exit(0 if r else 1)
