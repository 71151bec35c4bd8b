"""One Kubernetes pin that is still in standard support, and chart pins that match it."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aistarter_infra import versions  # noqa: E402
from aistarter_infra.platform.spec import PlatformConfigError, parse_platform_config  # noqa: E402


def test_kubernetes_pin_is_still_in_standard_support() -> None:
    left = versions.days_of_support_left()
    assert left > 0, (f"Kubernetes {versions.KUBERNETES} left standard support on {versions.SUPPORT_END}: pick the "
                      "next minor in versions.py and re-check every chart pairing there")


def test_support_end_is_after_the_day_it_was_chosen() -> None:
    assert versions.SUPPORT_END > versions.CHOSEN_ON
    assert versions.days_of_support_left(date(2027, 3, 1)) < 0, "the check must turn red after the end date"


def test_autoscaler_image_is_the_cluster_minor() -> None:
    assert versions.minor(versions.CLUSTER_AUTOSCALER.image_tag) == versions.KUBERNETES


def test_every_chart_is_pinned_with_its_pairing_source() -> None:
    for chart in versions.HELM_CHARTS:
        assert chart.version.count(".") == 2 and chart.version[0].isdigit(), chart
        assert chart.source and chart.repo.startswith(("https://", "oci://")), chart


def test_a_mismatched_autoscaler_image_is_refused() -> None:
    values = {"cloud": "aws", "clusterName": "demo", "kubernetesVersion": "1.35",
              "clusterAutoscaler": {"chartVersion": "9.43.1", "imageTag": "v1.33.0"}}
    with pytest.raises(PlatformConfigError, match="does not match kubernetesVersion 1.35"):
        parse_platform_config(values)


def test_validation_uses_the_pinned_minor() -> None:
    from aistarter_infra.validate import DEFAULT_K8S_VERSION

    assert DEFAULT_K8S_VERSION == versions.KUBERNETES
