"""QoS classes and pod cgroup sizing as kubelet computes them."""

from runtime.qos import (
    ContainerResources as C,
)
from runtime.qos import (
    container_cgroup,
    pod_cgroup,
    pod_resources,
    qos_class,
)

MI = 2**20


def test_qos_classes():
    assert qos_class([C(), C()]) == "BestEffort"
    assert qos_class([C(cpu_limit_milli=500, memory_limit_bytes=64 * MI)]) == "Guaranteed"
    assert qos_class([C(cpu_request_milli=500, cpu_limit_milli=500,
                        memory_request_bytes=64 * MI, memory_limit_bytes=64 * MI)]) == "Guaranteed"
    assert qos_class([C(cpu_request_milli=100, cpu_limit_milli=500,
                        memory_limit_bytes=64 * MI)]) == "Burstable"
    assert qos_class([C(cpu_limit_milli=500, memory_limit_bytes=64 * MI), C()]) == "Burstable"
    assert qos_class([C(memory_request_bytes=MI)]) == "Burstable"


def test_pod_resources_sum_limits_only_when_every_container_has_one():
    both = pod_resources([C(cpu_request_milli=100, cpu_limit_milli=200, memory_limit_bytes=MI),
                          C(cpu_request_milli=300, cpu_limit_milli=400, memory_limit_bytes=2 * MI)])
    assert (both.cpu_request_milli, both.cpu_limit_milli, both.memory_limit_bytes) == \
        (400, 600, 3 * MI)
    one = pod_resources([C(cpu_limit_milli=200, memory_limit_bytes=MI), C(cpu_request_milli=50)])
    assert one.cpu_limit_milli is None and one.memory_limit_bytes is None
    assert one.cpu_request_milli == 250  # a missing request defaults to the limit


def test_cgroup_paths_like_kubelet():
    assert pod_cgroup("kubepods", "Guaranteed", "ab-cd") == "kubepods/podab_cd"
    assert pod_cgroup("kubepods", "Burstable", "ab-cd") == "kubepods/burstable/podab_cd"
    assert pod_cgroup("kubepods", "BestEffort", "x") == "kubepods/besteffort/podx"
    assert container_cgroup("kubepods/podx", "c1") == "kubepods/podx/c1"
