/* rostesim LLM: JSON helpers (see jsonutil.h). */
#include "llm/io/jsonutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/io/fileio.h"
#include "quant/status.h"

const char *llm_json_type(const cJSON *v)
{
    if (!v) return "missing";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "invalid";
}

const char *llm_quoted(char *buf, size_t cap, const char *s, size_t len)
{
    size_t o = 0, i = 0;
    for (; i < len && o + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') buf[o++] = (char)ch;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
    }
    if (i < len && o + 4 <= cap) { memcpy(buf + o, "...", 3); o += 3; }
    buf[o] = 0;
    return buf;
}

int llm_json_write(const char *path, cJSON *j, int pretty)
{
    char *txt = j ? (pretty ? cJSON_Print(j) : cJSON_PrintUnformatted(j)) : NULL;
    cJSON_Delete(j);
    if (!txt) return RS_ERROR(RS_ENOMEM, "%s: out of memory", path);
    llm_atomic a;
    int bad = llm_atomic_write_line(&a, path, txt, 0);
    free(txt);
    return bad ? RS_ERROR(RS_EIO, "cannot write %s: %s", path, strerror(a.err)) : RS_OK;
}
