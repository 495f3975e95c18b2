#!/usr/bin/env python3
"""Doxygen INPUT_FILTER for kinglet's headers (docs/Doxyfile).

The headers document declarations with plain /* */ comments. Doxygen reads
this filter's output instead of the file: the comment markers become
Doxygen's, nothing else changes (lines stay where they are, so warnings
point at the real file and line):

  - the file's opening comment           /*  ->  /**  ... \\file */
  - a comment after code on its line     /*  ->  /**<  (documents that member or
                                         #define; not after #include, #if, #endif)
  - any other comment                    /*  ->  /**   (documents what follows)
  - section rules, "/* ---- name ---",   left as they are (they document a
    section, not the declaration after them)

Inside the converted comments the characters Doxygen would read as commands
or HTML (\\ @ < > & #, a '.' that starts a line, a '/*' inside the
comment) are escaped: the XMPP elements the comments name (<starttls/>,
<auth/>) and JIDs (user@domain) come out as written.
"""
import re
import sys

ESCAPE = {'\\': '\\\\', '@': '\\@', '<': '\\<', '>': '\\>', '&': '\\&', '#': '\\#'}


def convert(body, first):
    # body: the text between "/*" and "*/"
    text = ''.join(ESCAPE.get(ch, ch) for ch in body)
    # "port/posix/*.c" would open a nested comment for Doxygen
    text = text.replace('/*', '/<span></span>*')
    # a line whose text starts with '.' would end a Markdown list: escape it
    text = re.sub(r'(^|\n)([ \t]*\*?[ \t]*)\.', r'\1\2\\.', text)
    if first:
        return '/**' + text + ' \\file */'
    return '/**' + text + '*/'


def directive(out):
    # the current output line is a preprocessor line other than #define
    line = ''.join(out).rsplit('\n', 1)[-1].lstrip()
    return line.startswith('#') and not line[1:].lstrip().startswith('define')


def filter_source(src):
    out = []
    i, n = 0, len(src)
    line_has_code = False   # code before the comment on the same line
    seen_comment = False
    while i < n:
        ch = src[i]
        if ch == '/' and i + 1 < n and src[i + 1] == '*':
            end = src.find('*/', i + 2)
            if end < 0:
                out.append(src[i:])
                break
            body = src[i + 2:end]
            if body.startswith('*') or body.startswith('!') or body.lstrip().startswith('----'):
                out.append(src[i:end + 2])           # already Doxygen's, or a section rule
            elif line_has_code and not directive(out):
                out.append('/**<' + convert(body, False)[3:])
            elif line_has_code:
                out.append(src[i:end + 2])           # after #include, #if, #endif: a note
            else:
                out.append(convert(body, not seen_comment))
            seen_comment = True
            i = end + 2
            continue
        if ch == '/' and i + 1 < n and src[i + 1] == '/':
            end = src.find('\n', i)
            end = n if end < 0 else end
            out.append(src[i:end])
            i = end
            continue
        if ch in '"\'':
            j = i + 1
            while j < n and src[j] != ch:
                j += 2 if src[j] == '\\' else 1
            out.append(src[i:j + 1])
            i = j + 1
            line_has_code = True
            continue
        if ch == '\n':
            line_has_code = False
        elif not ch.isspace():
            line_has_code = True
        out.append(ch)
        i += 1
    return ''.join(out)


if __name__ == '__main__':
    with open(sys.argv[1], encoding='utf-8') as f:
        sys.stdout.write(filter_source(f.read()))
