/* rostesim LLM: the phase counters (llm/nn/prof.h). */
#include "llm/nn/prof.h"

#include <stdio.h>
#include <string.h>

int llm_prof_on;
double llm_prof_s[LLM_NPH];

void llm_prof_enable(int on)
{
    memset(llm_prof_s, 0, sizeof llm_prof_s);
    llm_prof_on = on;
}

const char *llm_prof_name(int ph)
{
    static const char *const n[LLM_NPH] = {"matmul", "attention", "quantizers", "rotations", "optimizer"};
    return ph >= 0 && ph < LLM_NPH ? n[ph] : "?";
}

void llm_prof_report(char *buf, size_t n, double total)
{
    size_t k = 0;
    double sum = 0;
    buf[0] = 0;
    for (int ph = 0; ph < LLM_NPH && k < n; ph++) {
        sum += llm_prof_s[ph];
        k += (size_t)snprintf(buf + k, n - k, "%s %.1f%%, ", llm_prof_name(ph), total > 0 ? 100.0 * llm_prof_s[ph] / total : 0.0);
    }
    if (k < n) snprintf(buf + k, n - k, "other %.1f%%", total > 0 ? 100.0 * (total - sum) / total : 0.0);
}
