"""The reasons a pod's container shows while waiting are kubelet's own words: kubectl,
dashboards and a person's alerts match on them (``kubectl get pods`` prints them as the
STATUS).  Read from the pod manager's source, every one it can set."""

from __future__ import annotations

import ast
from pathlib import Path

MANAGER = Path(__file__).resolve().parents[2] / "nodeagent" / "podmanager" / "manager.py"
# kubelet's container waiting reasons (pkg/kubelet/container/sync_result.go, images/types.go,
# kuberuntime, pkg/kubelet/kubelet_pods.go).
KUBELET = {"ContainerCreating", "PodInitializing", "CrashLoopBackOff", "ErrImagePull",
           "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "RegistryUnavailable",
           "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
           "PreStartHookError", "PostStartHookError"}


def _waiting_reasons() -> set[str]:
    """The string constants in the first element of each tuple assigned to w.waiting[...]."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MANAGER.read_text())):
        if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript)
                and isinstance(node.targets[0].value, ast.Attribute)
                and node.targets[0].value.attr == "waiting"):
            continue
        assert isinstance(node.value, ast.Tuple)
        found |= _values(node.value.elts[0])
    return found


def _values(expr: ast.expr) -> set[str]:
    """What a reason expression can be: a string, or either side of a conditional."""
    if isinstance(expr, ast.IfExp):
        return _values(expr.body) | _values(expr.orelse)
    assert isinstance(expr, ast.Constant) and isinstance(expr.value, str), ast.dump(expr)
    return {expr.value}


def test_every_waiting_reason_is_kubelets():
    reasons = _waiting_reasons()
    assert len(reasons) >= 6, reasons  # the reader still finds them
    assert reasons <= KUBELET, sorted(reasons - KUBELET)
