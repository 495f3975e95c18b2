/* kinglet — EVA driver: DNS records with a compression pointer to every
 * offset (core/kl_dns.c). prove_dns.c's records part (part 8, see there)
 * run alone with SH_PTR: after an echoed question to an SRV query, one
 * answer record with the owner, or the name in its RDATA, a pointer to
 * every offset that holds a byte the driver chose and to every offset past
 * the message's end (those up to 255 as one state), each one analysed on
 * its own; and the CNAME and SRV chains with the second record's owner
 * such a pointer. Every RDLENGTH is not here (prove_dns.c has it). */
#define PROVE_PARTS 8
#define SH_PTR 1
#define SH_ANY 0
#define SH_ONLY_PTR 1
#include "prove_dns.c"
