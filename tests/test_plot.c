/* rostesim: plots/plot.c's plot_run_script, the driver of the embedded scripts that name their
 * own output (llm diagnose's llm_fig*, paper's table1), with fake gnuplot programs: what gnuplot
 * reads (datadir, the prelude, the script), a gnuplot that exits without reading a large input
 * (a failed figure, never a SIGPIPE death of the caller, whose SIGPIPE action is kept), one that
 * cannot be run, and an unknown script. No real gnuplot needed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plots/plot.h"
#include "quant/status.h"
#include "tests/check.h"
#include "tests/fixture.h"

static int write_script(const char *path, const char *body)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(body, f);
    fclose(f);
    return chmod(path, 0755);
}

int main(void)
{
    char dir[] = "/tmp/rostesim-test-plot.XXXXXX";
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    char cat[4200], quit[4200], in[4200], cmd[8600];
    snprintf(cat, sizeof cat, "%s/fake-gnuplot-cat", dir);
    snprintf(quit, sizeof quit, "%s/fake-gnuplot-quit", dir);
    snprintf(in, sizeof in, "%s/gnuplot-input.txt", dir);
    char body[4400];
    snprintf(body, sizeof body, "#!/bin/sh\ncat >'%s'\n", in);
    CHECK(write_script(cat, body) == 0 && write_script(quit, "#!/bin/sh\nexit 3\n") == 0, "fake gnuplots written");
    signal(SIGPIPE, SIG_DFL);

    /* what gnuplot reads: datadir (quoted for gnuplot), the prelude, the script */
    setenv("ROSTESIM_GNUPLOT", cat, 1);
    int st = plot_run_script(dir, "llm_fig4", "nruns = 1\narray rn[1]\nrn[1] = \"ste\"\n");
    char *got = fx_read_file(in, NULL);
    char want[4300];
    snprintf(want, sizeof want, "datadir = '%s'\nnruns = 1\narray rn[1]\nrn[1] = \"ste\"\n", dir);
    const char *script = plot_gp_text("llm_fig4");
    CHECK(st == RS_OK, "a gnuplot that reads everything: RS_OK (%s)", st ? rs_last_error() : "");
    CHECK(got && script && !strncmp(got, want, strlen(want)) && strstr(got, script) && strstr(got, "\nset output\n"),
          "gnuplot reads datadir, the prelude, the script, then 'set output'");
    free(got);

    /* 1 MiB of prelude to a gnuplot that exits without reading: the write fails (EPIPE) */
    size_t big = 1 << 20;
    char *pre = malloc(big + 1);
    for (size_t i = 0; i < big; i++) pre[i] = (i % 64 == 63) ? '\n' : '#';
    pre[big] = 0;
    setenv("ROSTESIM_GNUPLOT", quit, 1);
    st = plot_run_script(dir, "llm_fig7", pre);
    free(pre);
    CHECK(st == RS_EIO && strstr(rs_last_error(), "gnuplot failed drawing llm_fig7 (exit status 3)"),
          "a gnuplot that exits without reading 1 MiB: RS_EIO, the caller alive (%s)", rs_last_error());
    struct sigaction now;
    sigaction(SIGPIPE, NULL, &now);
    CHECK(now.sa_handler == SIG_DFL, "the caller's SIGPIPE action is back afterwards");

    snprintf(cmd, sizeof cmd, "%s/none/gnuplot", dir);
    setenv("ROSTESIM_GNUPLOT", cmd, 1);
    st = plot_run_script(dir, "llm_fig3", NULL);
    CHECK(st == PLOT_ENOGNUPLOT, "a gnuplot that cannot be run: PLOT_ENOGNUPLOT (%s)", rs_last_error());

    st = plot_run_script(dir, "no_such_script", NULL);
    CHECK(st == RS_EINVAL && strstr(rs_last_error(), "no_such_script"), "an unknown script: RS_EINVAL (%s)", rs_last_error());

    /* no log left behind */
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -q '\\.log$'", dir);
    CHECK(system(cmd) != 0, "no gnuplot log left in the folder");
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("test_plot");
}
