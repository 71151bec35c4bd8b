"""Every version the infra pins, in one place, each with the source that pairs it with the Kubernetes minor.

`KUBERNETES` is the control-plane minor for EKS, GKE and AKS alike, chosen in standard support on all three on
2026-12-02; `SUPPORT_END` is the earliest date any of the three (or upstream) ends it. A test fails once that
date has passed, so the pin cannot silently age into extended-support billing or refused cluster creation.
Changing the minor means re-checking every pairing below (the comment next to each says where).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

KUBERNETES = "1.35"
# Earliest end of standard support across the three clouds and upstream for 1.35:
#   upstream EOL 2027-02-28 (kubernetes.io/releases/1.35); EKS standard support ends 2027-03-27
#   (docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html); AKS supports a minor 12 months from
#   its AKS GA and GKE ~14 months from its GKE release, both later than upstream EOL for 1.35.
# 1.34 was rejected: EKS ends its standard support on 2026-12-02, today.
SUPPORT_END = date(2027, 2, 28)
CHOSEN_ON = date(2026, 12, 2)


@dataclass(frozen=True)
class Chart:
    """A Helm chart pin: chart version, the image it runs (empty: the chart's own default) and its repo."""

    chart: str
    version: str
    repo: str
    image_tag: str = ""
    source: str = ""


# Cluster Autoscaler: chart 9.59.0 is built with appVersion 1.35.0, the same minor as the cluster, and its RBAC
# includes volumeattachments (chart 9.43.1 + image 1.33 lacked it: kubernetes/autoscaler#7663, #8678). Each
# autoscaler minor embeds the scheduler of the Kubernetes minor of the same number; never mix them.
CLUSTER_AUTOSCALER = Chart("cluster-autoscaler", "9.59.0", "https://kubernetes.github.io/autoscaler",
                           image_tag="v1.35.0",
                           source="github.com/kubernetes/autoscaler charts/cluster-autoscaler/Chart.yaml "
                                  "(appVersion 1.35.0)")
# KEDA supports Kubernetes N-2 per release (keda.sh/docs/operate/cluster, "Kubernetes Compatibility"); 2.20
# is the release whose window includes 1.35. Chart version == KEDA version.
KEDA = Chart("keda", "2.20.2", "https://kedacore.github.io/charts",
             source="keda.sh/docs/operate/cluster#kubernetes-compatibility")
# kube-prometheus-stack bundles the Prometheus Operator and its CRDs; its kubeVersion constraint is >=1.19.
KUBE_PROMETHEUS_STACK = Chart("kube-prometheus-stack", "67.8.0",
                              "https://prometheus-community.github.io/helm-charts",
                              source="prometheus-community/helm-charts charts/kube-prometheus-stack/Chart.yaml "
                                     "(kubeVersion >=1.19.0-0)")
# NVIDIA device plugin: a DaemonSet using the stable device-plugin API (v1beta1), independent of the minor.
NVIDIA_DEVICE_PLUGIN = Chart("nvidia-device-plugin", "0.19.0", "https://nvidia.github.io/k8s-device-plugin",
                             source="NVIDIA/k8s-device-plugin README (device plugin API v1beta1, k8s >=1.10)")
# DCGM exporter: GPU metrics for Prometheus; a DaemonSet with no Kubernetes-minor coupling.
DCGM_EXPORTER = Chart("dcgm-exporter", "4.5.2", "https://nvidia.github.io/dcgm-exporter/helm-charts",
                      source="NVIDIA/dcgm-exporter deployment/Chart.yaml")
# AWS Load Balancer Controller: chart 1.14.x ships controller v2.14.x, which supports Kubernetes 1.22+ and the
# Gateway API (ALB/NLB) integration.
AWS_LOAD_BALANCER_CONTROLLER = Chart("aws-load-balancer-controller", "1.14.1", "https://aws.github.io/eks-charts",
                                     source="aws/eks-charts stable/aws-load-balancer-controller/Chart.yaml")

# ALB controller of Application Gateway for Containers (Gateway API, GA). An OCI chart; the controller
# supports every AKS minor in AKS standard support (learn.microsoft.com, "ALB Controller release notes").
AZURE_ALB_CONTROLLER = Chart("alb-controller", "1.7.9", "oci://mcr.microsoft.com/application-lb/charts",
                             source="learn.microsoft.com application-gateway/for-containers "
                                    "alb-controller-release-notes")

# EKS add-ons: AWS resolves the add-on version built for the cluster's minor when none is pinned, which is
# the pairing we want (metrics-server and the EBS CSI driver ship per-minor builds).
EKS_ADDONS = ("aws-ebs-csi-driver", "metrics-server")

HELM_CHARTS = (CLUSTER_AUTOSCALER, KEDA, KUBE_PROMETHEUS_STACK, NVIDIA_DEVICE_PLUGIN, DCGM_EXPORTER,
               AWS_LOAD_BALANCER_CONTROLLER, AZURE_ALB_CONTROLLER)


def minor(version: str) -> str:
    """'v1.35.2' or '1.35' -> '1.35'."""
    parts = version.lstrip("v").split(".")
    return ".".join(parts[:2])


def days_of_support_left(today: date | None = None) -> int:
    return (SUPPORT_END - (today or date.today())).days
