# kinglet — text/data/bss per module of a firmware image, from its GNU ld
# map file (arm-none-eabi-gcc -Wl,-Map=...). Used by `make size`.
#   awk -f examples/firmware/map_sizes.awk build/firmware/netcheck.map
# Modules: core/<file>, port/mps2, port/lwip, port/mbedtls, app, lwIP, mbedTLS, libc, libgcc, and the
# stack (a .stack section of the linker script). Only sections that take
# flash or RAM are counted (.text/.rodata/.ARM.* -> text, .data, .bss;
# .noinit, RAM a reset leaves alone, is counted with .bss and named apart
# on the last line).
# Input sizes are before string merging and without alignment fill, so the
# totals differ from arm-none-eabi-size's by a few dozen bytes.
#   awk -v sections='^core/' -f ... map   one line per input section (size,
#   module, section: .text.<function>, .rodata.<...>) of the matching modules

function hex(s,   i, c, v) {
    v = 0
    s = tolower(s)
    sub(/^0x/, "", s)
    for (i = 1; i <= length(s); i++) {
        c = index("0123456789abcdef", substr(s, i, 1))
        if (c == 0) break
        v = v * 16 + c - 1
    }
    return v
}
function module(f) {
    if (f ~ /\/core\/[^\/]*\.o$/) { sub(/.*\/core\//, "core/", f); sub(/\.o$/, "", f); return f }
    if (f ~ /\/board\//) return "port/mps2"
    if (f ~ /\/port\/kl_lwip/) return "port/lwip"
    if (f ~ /\/port\//) return "port/mbedtls"
    if (f ~ /\/examples\// || f ~ /\/xmpp_sensor\.o$/) return "app"
    if (f ~ /liblwip\.a/) return "lwIP"
    if (f ~ /libmbed[a-z0-9]*\.a/) return "mbedTLS"
    if (f ~ /libc(_nano)?\.a/ || f ~ /libnosys/) return "libc"
    if (f ~ /libgcc\.a/) return "libgcc"
    return "other"
}
function add(name, size, file,   m, k) {
    if (out == ".text" || out == ".ARM.exidx") k = "text"
    else if (out == ".data") k = "data"
    else if (out == ".bss") k = "bss"
    else if (out == ".noinit") { k = "bss"; noinit += size }
    else return
    m = module(file)
    if (!(m in seen)) { seen[m] = 1; order[++n] = m }
    sz[m, k] += size
    last_m = m; last_k = k; last_size = size
    if (sections != "" && m ~ sections) { nsec++; sec_m[nsec] = m; sec_n[nsec] = name; sec_sz[nsec] = size; last_sec = nsec }
    else last_sec = 0
}
# Merged string sections (.rodata.*.str1.1): ld prints the merged output's
# size on every input section and the input's own size on the next line,
# "(size before relaxing)". Count the input's own size (before cross-file
# deduplication: an upper bound, off by the few strings shared).
/\(size before relaxing\)/ {
    if (last_m != "" && $1 ~ /^0x/) sz[last_m, last_k] += hex($1) - last_size
    if (last_m != "" && $1 ~ /^0x/ && last_sec) sec_sz[last_sec] = hex($1)
    last_m = ""
    next
}
/^Linker script and memory map/ { started = 1; next }
!started { next }
/^\.[A-Za-z_]/ {
    out = $1; pending = ""
    if (out == ".stack" && NF >= 3) stack = hex($3)
    next
}
/^[^ ]/ { out = ""; pending = ""; last_m = ""; next }
pending != "" {
    if (NF >= 3 && $1 ~ /^0x/ && $2 ~ /^0x/) add(pending, hex($2), $3)
    pending = ""
    next
}
/^ [^ *]/ || /^ COMMON/ {
    if (NF >= 4 && $2 ~ /^0x/ && $3 ~ /^0x/) add($1, hex($3), $4)
    else if (NF == 1) pending = $1
    next
}
END {
    if (sections != "") { # -v sections=REGEX: one line per input section of those modules
        for (i = 1; i <= nsec; i++) printf "%7d %-16s %s\n", sec_sz[i], sec_m[i], sec_n[i]
        exit
    }
    printf "%-16s %7s %6s %6s\n", "module", "text", "data", "bss"
    # core files first, then the rest in a fixed order
    nk = 0
    for (i = 1; i <= n; i++) if (order[i] ~ /^core\//) list[++nk] = order[i]
    split("port/mps2 port/lwip port/mbedtls app lwIP mbedTLS libc libgcc other", rest, " ")
    for (j = 1; j <= 9; j++) if (rest[j] in seen) list[++nk] = rest[j]
    for (i = 1; i <= nk; i++) {
        m = list[i]
        printf "%-16s %7d %6d %6d\n", m, sz[m, "text"], sz[m, "data"], sz[m, "bss"]
        if (m ~ /^core\//) { ct += sz[m, "text"]; cd += sz[m, "data"]; cb += sz[m, "bss"] }
        tt += sz[m, "text"]; td += sz[m, "data"]; tb += sz[m, "bss"]
    }
    printf "%-16s %7d %6d %6d\n", "(core total)", ct, cd, cb
    printf "%-16s %7s %6s %6d\n", "stack", "", "", stack
    printf "%-16s %7d %6d %6d\n", "total", tt, td, tb + stack
    if (noinit)
        printf "flash %d of 262144, RAM %d of 65536 (.data %d + .bss %d + .noinit %d + stack %d)\n", \
            tt + td, td + tb + stack, td, tb - noinit, noinit, stack
    else
        printf "flash %d of 262144, RAM %d of 65536 (.data %d + .bss %d + stack %d)\n", \
            tt + td, td + tb + stack, td, tb, stack
}
