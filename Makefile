# The two entry points the README opens with. Each creates the virtual environment on first use, so both
# work on a fresh machine with nothing but Python 3.11+ and pip.
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test

# torch/torchaudio 2.9.1 first: the pair the engine is tested with (qwen-tts itself does not pin torch).
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.9.1 torchaudio==2.9.1
	$(PY) -m pip install -q -e '.[bot,engine,dev,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/voicebot demo

test: $(STAMP)
	$(PY) -m pytest -q
