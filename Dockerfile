# syntax=docker/dockerfile:1
# One image for every Akri component; deploy/ chooses the command per workload
# (`akri agent`, `akri controller`, `akri webhook --self-signed`, `akri handler NAME`).
#
# Multi-platform build (buildx; on an x86 host QEMU binfmt handlers for the Arm targets):
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 \
#       -t REGISTRY/akri:0.1.0 --push .
# Single platform, no registry (then import it on a k3s or MicroK8s node, deploy/README.md):
#   docker build -t akri:0.1.0 .
#
# Build arguments:
#   EXTRAS=opcua (default) bakes in asyncua for the OPC UA handler. It is imported only by that
#   handler, so it costs image size (~15 MB), never memory in the agent; EXTRAS= drops it.
#   PYTHON_VERSION=3.11 (the version CI tests).

ARG PYTHON_VERSION=3.11
ARG DEBIAN_RELEASE=bookworm

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS build
# A C toolchain for the Cython extensions, and for dependencies without a wheel for the
# target: on linux/arm/v7 uvloop (bundled libuv, built with autotools) and, depending on the
# release, grpcio/grpcio-tools compile from source, which takes a long time under QEMU.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential autoconf automake libtool pkg-config libffi-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# what the build needs and nothing else (.dockerignore keeps generated files out)
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY protos/ protos/
COPY akri/ akri/
ARG EXTRAS=opcua
# A virtualenv at the path it will have in the runtime image; the wheel is built in pip's
# isolated environment (Cython, grpcio-tools from [build-system]), so the extensions are
# compiled and the gRPC modules generated for this platform. The build fails if the
# extensions did not compile rather than ship the slower pure-Python twins.
RUN python -m venv /opt/akri \
 && /opt/akri/bin/pip install --upgrade pip \
 && /opt/akri/bin/pip install ".${EXTRAS:+[${EXTRAS}]}" \
 && cd / && /opt/akri/bin/python -c "import json, subprocess; \
info = json.loads(subprocess.check_output(['/opt/akri/bin/akri', 'version', '--json'])); \
print(info); assert info['compiled'] is True, 'Cython extensions missing'" \
 && /opt/akri/bin/pip uninstall -y -q pip

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE}
# libudev1: pyudev loads it (udev handler). No compiler, no pip: nothing to install at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libudev1 \
 && rm -rf /var/lib/apt/lists/* \
 && python -m pip uninstall -y -q pip setuptools wheel || true
COPY --from=build /opt/akri /opt/akri
# Bytecode was compiled at install time; the root filesystem is mounted read-only.
ENV PATH=/opt/akri/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Non-root by default (controller, webhook). The agent and the discovery handlers override it
# with uid 0 and every capability dropped: they create sockets in root-owned kubelet
# directories on the host (deploy/base/agent.yaml says why).
USER 65532:65532
ENTRYPOINT ["akri"]
CMD ["--help"]
