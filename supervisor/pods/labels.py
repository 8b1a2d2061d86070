"""The labels a pod is made of: every container of a pod carries POD_LABEL (the pod's
name); its infra also carries INFRA_LABEL.  A create body with POD_LABEL (corral's
`run --pod`, or `docker run --label io.corral.kube.pod=NAME`) joins that pod.  The
values are kept from the first `kube play` pods, so pods made before stay pods."""

#: The reserved image reference of a pod's infra (`pods/infra.py`: no real image).
INFRA_REF = "corral/pod-infra"
POD_LABEL = "io.corral.kube.pod"
INFRA_LABEL = "io.corral.kube.infra"
#: `pod create`'s own labels (`--label`) and settings, kept on the infra.
POD_LABELS_PREFIX = "io.corral.pod.label."
SHARE_LABEL = "io.corral.pod.share"

#: What members share by default, as Kubernetes: network (and with it the published
#: ports and `localhost`), ipc and uts (one hostname); pid when asked
#: (`shareProcessNamespace: true`, `pod create --share +pid`), the infra its PID 1.
DEFAULT_SHARE = ("net", "ipc", "uts")
SHAREABLE = ("net", "ipc", "uts", "pid")
