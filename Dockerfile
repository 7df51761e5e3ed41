# ringflow: the runtime program in a container (Debian 12, the project's own install script).
#   docker build -t ringflow:0.1.0 .
#   docker run --rm -p 9750:9750 ringflow:0.1.0        # the supervised demo until stopped
# GPU: this image is built without the GPU backends (-DRINGFLOW_CUDA=OFF -DRINGFLOW_HIP=OFF: debian:12
# has no nvcc) and runs the CPU and sim backends; a CUDA base image would be needed for them.

# ---- build stage ---------------------------------------------------------------------------
FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN bash scripts/install-deps.sh \
 && cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DRINGFLOW_BUILD_TESTS=OFF -DRINGFLOW_BUILD_BENCH=OFF -DRINGFLOW_BUILD_EXAMPLES=OFF \
      -DRINGFLOW_CUDA=OFF -DRINGFLOW_HIP=OFF \
 && cmake --build build --target ringflow \
 && strip build/runtime/ringflow

# ---- runtime stage: only the shared libraries the program links -----------------------------
# `readelf -d ringflow` NEEDED: libcaf_core, libyaml-cpp, libyaml, libspdlog, libcrypto (libssl3: plugin
# SHA-256) (+ libstdc++, libc); libfmt comes through spdlog. The HTTP server is ringflow's own.
# libcaf-io0.17 is not installed: the program does not link CAF's I/O module. GPU driver libraries
# are not linked either (`ringflow devices` dlopens them; in this image it reports none).
FROM debian:12-slim
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      libcaf-core0.17 libyaml-cpp0.7 libyaml-0-2 libspdlog1.10 libfmt9 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home ringflow
COPY --from=build /src/build/runtime/ringflow /usr/local/bin/ringflow
COPY examples/topologies/ /etc/ringflow/topologies/
# Numeric UID so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001
EXPOSE 9750
STOPSIGNAL SIGTERM
ENTRYPOINT ["ringflow"]
CMD ["run", "/etc/ringflow/topologies/supervised-demo.yaml", "--http", "0.0.0.0:9750", "--duration", "0"]
