# The Jobline operator image: the package and its pinned dependencies in a
# virtualenv on a Python 3.11 base, run as a non-root user. `make image` builds it
# (with Docker, or with buildah on a base made from Debian's packages).
ARG BASE=python:3.11-slim

FROM $BASE AS build
# A CA bundle for pip behind a TLS-inspecting proxy (a path the build mounts); unset: pip's own.
ARG PIP_CERT
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY operator ./operator
RUN python3 -m venv /opt/jobline \
 && /opt/jobline/bin/pip install --no-cache-dir --disable-pip-version-check -c constraints.txt . \
 && /opt/jobline/bin/pip uninstall --yes --quiet pip

FROM $BASE
COPY --from=build /opt/jobline /opt/jobline
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin jobline
ENV PATH=/opt/jobline/bin:$PATH PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
ENTRYPOINT ["jobline"]
CMD ["operator", "--metrics-address=0.0.0.0:9090", "--health-address=0.0.0.0:8081"]
