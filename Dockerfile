# One image for every ContactPoint service; the command picks which one runs:
#   docker run IMAGE serve identity|records|audit|gateway
#   docker run IMAGE admin create-service-account --name … --org … --role … --json
# Configuration comes from CONTACTPOINT_* environment variables only; no secrets or keys are
# baked in (signing keys are created on first start in a mounted volume).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user, and the folder its key volumes mount on (a named volume takes the
# ownership of the folder it is mounted over, so the service can create its key there).
RUN groupadd --system --gid 10001 contactpoint \
    && useradd --system --uid 10001 --gid contactpoint --home-dir /var/lib/contactpoint \
       --shell /usr/sbin/nologin contactpoint \
    && install -d -o contactpoint -g contactpoint -m 0700 /var/lib/contactpoint /var/lib/contactpoint/keys \
    && install -d -o contactpoint -g contactpoint -m 0700 /etc/contactpoint /etc/contactpoint/tls

# Every runtime dependency is pinned (==) in pyproject.toml; this installs exactly those, and the
# sources are removed again: only the installed distribution is in the image.
COPY pyproject.toml README.md /tmp/src/
COPY contactpoint /tmp/src/contactpoint
COPY services /tmp/src/services
COPY gateway /tmp/src/gateway
RUN pip install /tmp/src && rm -rf /tmp/src

USER contactpoint:contactpoint
WORKDIR /var/lib/contactpoint
EXPOSE 50051
ENTRYPOINT ["contactpoint"]
CMD ["--help"]
