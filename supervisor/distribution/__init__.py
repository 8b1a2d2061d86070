"""The distribution client: images from registries (OCI distribution spec / Registry API v2).

`reference` (where a name lives), `transport` (HTTP/1.1 on trio, h11 core), `auth`
(anonymous, Bearer token, Basic), `manifests` (media types, platform choice: pure),
`pull` (blobs verified while they stream, layers into the image store), `jobs` (one pull
per image at a time, progress fanned out to every client asking for it).
"""
