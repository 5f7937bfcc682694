# The two commands of the README:  `make book`  and  `make test`.  Both set everything up first (idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= default
# Debian packages: the corpus (Festival voices and lexicon, FluidSynth and two soundfonts, TiMidity and the
# freepats samples, a word list), the real recordings (Asterisk's prompts of real speakers and its music on hold,
# the -it and -ru packages carrying the transcripts; KTuberling's spoken words) ...
BOOK_APT := festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k festlex-cmu \
            fluidsynth libfluidsynth3 fluid-soundfont-gm musescore-general-soundfont-small timidity freepats \
            wamerican libsndfile1 ktuberling-data \
            asterisk-core-sounds-fr-wav asterisk-core-sounds-es-wav asterisk-core-sounds-it-wav \
            asterisk-core-sounds-ru-wav asterisk-core-sounds-it asterisk-core-sounds-ru asterisk-prompt-fr-armelle \
            asterisk-prompt-it-menardi-wav asterisk-prompt-es-co asterisk-moh-opsound-wav
# ... and the browser for the tests' rendering check.
TEST_APT := chromium

.PHONY: setup setup-book setup-test apt-book apt-test venv corpus book test bench clean

setup: setup-book setup-test
setup-book: apt-book venv
setup-test: apt-book apt-test venv

apt-book:
	@$(call apt_install,$(BOOK_APT))
apt-test:
	@$(call apt_install,$(TEST_APT))

# Install the Debian packages that are missing (none: nothing to do). Root runs apt-get, others sudo.
define apt_install
missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
if [ -z "$$missing" ]; then echo "Debian packages present: $(1)"; \
elif ! command -v apt-get >/dev/null; then echo "no apt-get: install the equivalents of: $$missing (see README)"; exit 1; \
else sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); echo "apt-get install $$missing"; \
  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
endef

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-encoders.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-encoders.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

corpus: setup-book
	$(PY) -m wmlib corpus --profile $(PROFILE)

book: setup-book
	$(PY) -m wmlib features --profile $(PROFILE)
	$(PY) -m wmlib book --profile $(PROFILE)

test: setup-test
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

bench: setup-book
	$(PY) bench/corpus_build.py
	$(PY) bench/train_bench.py
	$(PY) bench/train_bench.py --preset large --steps 2 --rounds 3 --encode-batch 16 --no-compile  # the GPU size, here
	$(PY) bench/transformer_width.py  # MFU against speed: the default transformer and wider ones
	$(PY) bench/matmul_layouts.py
	$(PY) bench/probe_bench.py  # probes: tokens/s per probe, probe time of the two probing chapters

clean:
	rm -rf _build _static/plotly.min.js
