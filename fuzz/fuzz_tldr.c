/* Fuzz the Debian TL;DR builder: the input is a Translation-en text, optionally followed by
 * FUZZ_SEP and a Packages text; parse, attach sources, build, and write each entry as JSONL. */
#include "fuzz/fuzz_util.h"
#include "llm/train/tldr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *a, *b;
    size_t an, bn;
    fuzz_split(data, size, &a, &an, &b, &bn);
    tldr_set s;
    memset(&s, 0, sizeof s);
    if (tldr_parse(&s, (const char *)a, an, "Translation-en") == 0 &&
        (!b || tldr_set_sources(&s, (const char *)b, bn, "Packages") == 0) && tldr_build(&s) == 0) {
        for (size_t i = 0; i < s.n; i++) free(tldr_jsonl(&s.e[i]));
    }
    tldr_free(&s);
    return 0;
}
