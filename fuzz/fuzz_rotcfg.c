/* Fuzz the rotation-config JSON reader (llm/quantize/rotate.h) for a 2-layer model, then write back. */
#include <cjson/cJSON.h>

#include "fuzz/fuzz_util.h"
#include "llm/quantize/rotate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    if (!j) return 0;
    for (int nl = 1; nl <= 2; nl++) {
        llm_rot_config rc;
        if (llm_rot_config_from_json(&rc, j, nl, "rot.json") == 0) {
            cJSON *o = llm_rot_config_to_json(&rc);
            char *s = o ? cJSON_PrintUnformatted(o) : NULL;
            free(s);
            cJSON_Delete(o);
            llm_rot_config_free(&rc);
        }
    }
    cJSON_Delete(j);
    return 0;
}
