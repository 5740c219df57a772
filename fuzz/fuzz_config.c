/* Fuzz the config.json parser (and the parameter count of what it accepts). */
#include "fuzz/fuzz_util.h"
#include "llm/io/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llm_config c;
    if (llm_config_parse(&c, (const char *)data, size, "config.json") == 0) {
        volatile size_t n = llm_config_nparams(&c);
        (void)n;
        (void)llm_config_check(&c);
    }
    return 0;
}
