# The Jobline operator image: the package and its pinned dependencies on a slim
# Python, run as a non-root user. Build with `make image`.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels \
 && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin jobline
USER 10001:10001
ENTRYPOINT ["jobline"]
CMD ["operator", "--metrics-address=0.0.0.0:9090", "--health-address=0.0.0.0:8081"]
