/* rostesim plot DIR: redraw the figures of an lsq output folder from its saved TSVs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "plots/plot.h"

static void print_written(const char *path, void *ctx)
{
    int *count = ctx;
    if ((*count)++ == 0) printf("rostesim plot: wrote\n");
    printf("  %s\n", path);
}

int cmd_plot(int argc, char **argv)
{
    cli_cmd cmd = {
        .name = "plot",
        .synopsis = "DIR",
        .description =
            "Redraw every figure of the lsq output folder DIR from its saved data (meta.tsv,\n"
            "steps.tsv, runs.tsv, fit.tsv, prop44.tsv, summary.tsv) without recomputing.\n"
            "Writes, as PNG (1200x800) and PDF (6x4 in), into DIR:\n"
            "  fig1_bound     D_t and the Theorem 4.3 bound against the SGD step\n"
            "  fig1_loss      loss and weight quantization error ||e(Rw^t)||_G^2 against the step\n"
            "  fig2_tracking  final prediction error against weight quantization error, all runs\n"
            "  fig3_prop44    Proposition 4.4: measured error / bound, without and with Hadamard\n"
            "  fig4_sweep     final errors across the swept variable (sweeps only)\n"
            "A figure is rewritten only when gnuplot drew it successfully.",
        .opts = NULL,
        .nopts = 0,
        .min_pos = 1,
        .max_pos = 1,
        .epilog = "Needs gnuplot (Debian: sudo apt-get install gnuplot-nox); ROSTESIM_GNUPLOT=PATH\n"
                  "picks another gnuplot program.",
    };
    char *pos[1];
    size_t npos = 0;
    int rc = cli_parse(&cmd, argc, argv, pos, &npos);
    if (rc == CLI_HELP) return 0;
    if (rc != CLI_OK) return 2;
    const char *dir = pos[0];

    struct stat st;
    if (stat(dir, &st) != 0) {
        cli_error("plot", "%s: %s", dir, strerror(errno));
        return 2;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_error("plot", "%s: not a folder (give the output folder of 'rostesim lsq')", dir);
        return 2;
    }
    char meta[4096];
    snprintf(meta, sizeof meta, "%s/meta.tsv", dir);
    if (stat(meta, &st) != 0) {
        cli_error("plot", "%s is not an lsq output folder: no meta.tsv in it", dir);
        return 2;
    }

    char err[1024];
    int count = 0;
    if (plot_draw(dir, print_written, &count, err, sizeof err) != 0) {
        fflush(stdout);
        cli_error("plot", "%s", err);
        return 1;
    }
    return 0;
}
