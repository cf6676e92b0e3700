# The acr-bot GitHub Action image. The base must provide python3 (>= 3.11) with venv;
# git is installed when missing. Build offline-friendly bases with .ci/base-image.sh.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

SHELL ["/bin/sh", "-eu", "-c"]
# hadolint ignore=DL3008
RUN if ! command -v git >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends git ca-certificates && \
      rm -rf /var/lib/apt/lists/*; \
    fi

WORKDIR /opt/acr-bot
# Dependencies first, from pyproject.toml alone (with an empty stand-in package and README),
# so a change to acr_bot/ or the README rebuilds only the last layers. A virtualenv:
# Debian's python refuses system-wide pip installs (PEP 668).
COPY pyproject.toml ./
RUN python3 -m venv /opt/venv && \
    mkdir acr_bot && touch acr_bot/__init__.py README.md && \
    /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check . && \
    rm -rf acr_bot README.md build ./*.egg-info

COPY README.md entrypoint.py ./
COPY acr_bot ./acr_bot
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps \
      --force-reinstall . && \
    rm -rf build ./*.egg-info && \
    /opt/venv/bin/python -I -c "import acr_bot.github.action"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LITELLM_OFFLINE_MODE=true \
    ACR_BOT_CONTAINER=1

# Actions runs container actions as root and mounts the workspace at /github/workspace.
ENTRYPOINT ["/opt/venv/bin/python", "/opt/acr-bot/entrypoint.py"]
