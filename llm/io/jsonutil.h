/* rostesim LLM: small JSON helpers: for the messages of the readers of untrusted files
 * (config.json, safetensors headers, GGUF) what kind of JSON value was found and a printable
 * excerpt of a string that may hold anything; and the writer of our own JSON files. */
#ifndef RS_LLM_JSONUTIL_H
#define RS_LLM_JSONUTIL_H

#include <stddef.h>

#include "cJSON.h"

/* "missing" (NULL), "null", "a boolean", "a number", "a string", "an array", "an object". */
const char *llm_json_type(const cJSON *v);

/* s[0..len) made printable into buf (cap bytes): bytes outside ' '..'~' and the backslash
 * become \xNN; "..." marks a cut. Returns buf. */
const char *llm_quoted(char *buf, size_t cap, const char *s, size_t len);

/* The JSON files we write (rostesim_qat.json, rotation configs, ptq settings, tokenizer
 * fix-ups): the tree j printed indented (pretty) or on one line, with a newline, written
 * through the one atomic writer; j is deleted either way (NULL: an allocation failed while
 * building it). RS_OK, RS_ENOMEM "<path>: out of memory", or RS_EIO "cannot write <path>:
 * <why>". */
int llm_json_write(const char *path, cJSON *j, int pretty);

#endif
