# The two entry points the README opens with. Each creates the virtual environment on first use, so both
# work on a fresh machine with nothing but Python 3.11+ and pip.
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test postgres libopus

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

# The PostgreSQL server binaries the storage tests run a throwaway cluster from (Debian/Ubuntu package).
postgres:
	@if command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
		echo "PostgreSQL server binaries found"; \
	else \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql; \
	fi

# libopus, which discord.py encodes voice with (/speak, /read); the Opus encoder test skips without it.
libopus:
	@if ldconfig -p 2>/dev/null | grep -q 'libopus\.so'; then \
		echo "libopus found"; \
	else \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libopus0; \
	fi
