# syntax=docker/dockerfile:1
# A models directory as an image of its own, built from that directory (what `npx nx train trainer`
# writes, one sub-directory per model with its metadata.json):
#
#   docker build -f deploy/models.Dockerfile -t registry.example.com/filmgenre/models:<tag> models/
#
# The serving Deployment and the predict Job copy /models out of it in an init container (busybox
# gives them `sh` and `cp`). An image is immutable and addressed by its digest: every replica and
# every shard reads the same bytes, a rollout is a change of tag, a rollback the previous one.
# Recipe only: not built on the project's machines (no container engine there).
FROM busybox:1.37
COPY --chown=1000:1000 . /models/
USER 1000
