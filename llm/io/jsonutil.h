/* rostesim LLM: small helpers for the messages of the readers of untrusted files
 * (config.json, safetensors headers, GGUF): what kind of JSON value was found, and a
 * printable excerpt of a string that may hold anything. */
#ifndef RS_LLM_JSONUTIL_H
#define RS_LLM_JSONUTIL_H

#include <stddef.h>

#include "cJSON.h"

/* "missing" (NULL), "null", "a boolean", "a number", "a string", "an array", "an object". */
const char *llm_json_type(const cJSON *v);

/* s[0..len) made printable into buf (cap bytes): bytes outside ' '..'~' and the backslash
 * become \xNN; "..." marks a cut. Returns buf. */
const char *llm_quoted(char *buf, size_t cap, const char *s, size_t len);

#endif
